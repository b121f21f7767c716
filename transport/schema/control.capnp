# The control plane's wire messages. A connection starts with Handshake messages (version check
# and mutual HMAC authentication); only after Welcome does either side decode an Envelope.
@0xe52587178ce65818;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("atl::wire");

const protocolVersion :UInt32 = 1;

enum Role {
  driver @0;
  node @1;
  worker @2;
}

# First message from the dialling side.
struct Hello {
  protocolVersion @0 :UInt32;
  role @1 :Role;
  name @2 :Text;           # the node's or driver's name, for logs (at most 256 bytes)
  clientNonce @3 :Data;    # 32 random bytes
}

# The listener's answer: its own nonce, and proof that it holds the cluster token too.
struct Challenge {
  protocolVersion @0 :UInt32;
  serverNonce @1 :Data;    # 32 random bytes
  serverProof @2 :Data;    # HMAC-SHA256(token, "atoll/server" | clientNonce | serverNonce)
}

# The dialling side's proof: HMAC-SHA256(token, "atoll/client" | clientNonce | serverNonce | role).
struct Proof {
  clientProof @0 :Data;
}

struct Welcome {
  sessionId @0 :UInt64;
  dataAddress @1 :Text;    # the head's data plane (it relays objects); "" when it has none
}

enum RefusalReason {
  versionMismatch @0;
  authenticationFailed @1;
  malformed @2;
}

struct Refusal {
  reason @0 :RefusalReason;
  message @1 :Text;
}

struct Handshake {
  union {
    hello @0 :Hello;
    challenge @1 :Challenge;
    proof @2 :Proof;
    welcome @3 :Welcome;
    refusal @4 :Refusal;
  }
}

enum ErrorCategory {
  failed @0;
  overloaded @1;
  disconnected @2;
  timedOut @3;
  cancelled @4;
  invalidArgument @5;
  unimplemented @6;
}

# Sent back in place of a reply when a request fails.
struct ErrorReply {
  category @0 :ErrorCategory;
  message @1 :Text;
}

# Liveness and round-trip time: the receiver echoes sentNs back in a Pong.
struct Ping {
  sentNs @0 :UInt64;
}

struct Pong {
  sentNs @0 :UInt64;
}

struct Resource {
  name @0 :Text;
  amount @1 :Float64;      # finite, >= 0; memory in bytes
}

struct Label {
  key @0 :Text;
  value @1 :Text;
}

# A node agent announces itself (first message after the handshake).
struct RegisterNode {
  island @0 :Text;
  resources @1 :List(Resource);
  labels @2 :List(Label);
  gpuModel @3 :Text;
  gpusDeclared @4 :Bool;   # true: the operator declared the GPUs; false: detected via CUDA
  pid @5 :UInt32;
  hostname @6 :Text;
  dataAddress @7 :Text;    # its data plane ("tcp://HOST:PORT[,ucx://HOST:PORT]"), for objects
  dataName @8 :Text;       # the name its data plane gives in handshakes (readers check it)
}

struct NodeRegistered {
  nodeId @0 :UInt64;
  heartbeatIntervalMs @1 :UInt32;
}

struct Heartbeat {
  sequence @0 :UInt64;
}

struct StatusRequest {
  unused @0 :Void;
}

enum NodeLiveness {
  alive @0;
  suspect @1;
  dead @2;
}

struct NodeStatus {
  nodeId @0 :UInt64;
  name @1 :Text;
  island @2 :Text;
  liveness @3 :NodeLiveness;
  heartbeatAgeMs @4 :UInt64;
  resources @5 :List(Resource);
  labels @6 :List(Label);
  gpuModel @7 :Text;
  gpusDeclared @8 :Bool;
  address @9 :Text;
  hostname @10 :Text;
  pid @11 :UInt32;
  available @12 :List(Resource);  # not in use now, as the head's scheduler counts; empty when dead
}

struct ClusterStatus {
  nodes @0 :List(NodeStatus);
}

# A job's module (a shared library), content-addressed: driver -> head (upload), head -> node
# (reply to FetchModule).
struct ModuleBlob {
  hash @0 :Text;           # SHA-256 of bytes, 64 lowercase hex characters
  bytes @1 :Data;
}

struct ModuleRef {
  hash @0 :Text;
}

enum SelectorOp {
  in @0;
  notIn @1;
  exists @2;
  doesNotExist @3;
}

# Picks nodes by their labels (atl::LabelSelector).
struct Selector {
  key @0 :Text;
  op @1 :SelectorOp;
  values @2 :List(Text);
}

# An object's identity (atl::ObjectId): its owner (the driver that made it) and a sequence.
struct ObjectKey {
  owner @0 :UInt64;
  sequence @1 :UInt64;
}

# An argument whose value is an object held on a node (too large to travel inline): the node that
# runs the task fetches it from the holder's data plane. args[index] is empty.
struct ArgRef {
  index @0 :UInt32;
  object @1 :ObjectKey;
  size @2 :UInt64;
  holder @3 :Text;         # runTask: the holder's data address (the head fills it in)
  holderName @4 :Text;     # its data plane's name: a reader checks it reached the holder
  byReference @5 :Bool;    # the parameter is an ObjectRef: passed on, not fetched by the node
}

# One task: driver -> head (submitTask, taskId is the driver's), head -> node (runTask, taskId is
# the head's). Arguments are values, except the objects held on nodes (argRefs).
struct TaskSpec {
  taskId @0 :UInt64;
  moduleHash @1 :Text;
  moduleName @2 :Text;
  function @3 :Text;
  args @4 :List(Data);
  resources @5 :List(Resource);
  maxRetries @6 :UInt32;
  name @7 :Text;
  labelSelector @8 :List(Selector);    # hard: every one must match
  preferredLabels @9 :List(Selector);  # soft
  lease @10 :UInt64;       # runTask: tasks of one lease run one after another on one worker
  result @11 :ObjectKey;   # the result's id: a large result stays on the node under it
  argRefs @12 :List(ArgRef);
  actorArgs @13 :List(ActorArg);
  code @14 :Text;          # set: a Python function, pickled, in the module store under this hash
                           # (moduleHash, if set, is a C++ module its worker loads too)
  retryExceptions @15 :Bool;  # submitTask: an exception the task raised is retried too
}

# An ActorHandle parameter: the worker calls the actor through a handle of its own.
struct ActorArg {
  index @0 :UInt32;
  actor @1 :ActorKey;
  className @2 :Text;
  code @3 :Text;             # a Python class: its code hash (the receiver may not know the class)
  methods @4 :List(Text);    # and its methods, for the receiver's handle
}

# An actor's identity: the creating driver's random owner id and its sequence number, unique
# across the cluster without a round trip.
struct ActorKey {
  owner @0 :UInt64;
  sequence @1 :UInt64;
}

# Creating an actor: driver -> head (createActor, answered by actorCreated or an error), head ->
# node (startActor, once the head's scheduler placed it there).
struct ActorSpec {
  actor @0 :ActorKey;
  moduleHash @1 :Text;
  moduleName @2 :Text;
  className @3 :Text;
  args @4 :List(Data);     # constructor arguments, already values
  resources @5 :List(Resource);
  labelSelector @6 :List(Selector);
  preferredLabels @7 :List(Selector);
  name @8 :Text;           # empty: unnamed (ends with its owner's last handle)
  maxConcurrency @9 :UInt32;
  argRefs @10 :List(ArgRef);      # ObjectRef parameters (byReference), borrowed by the worker
  actorArgs @11 :List(ActorArg);  # ActorHandle parameters
  code @12 :Text;                 # as TaskSpec.code: a Python class
  maxRestarts @13 :Int32;         # createActor: restarts after a crash (-1: always)
}

# One method call: driver -> head (taskId is the driver's), head -> node (the head's). Calls of
# one caller reach the actor in the order they were sent.
struct ActorCall {
  actor @0 :ActorKey;
  taskId @1 :UInt64;
  method @2 :Text;
  args @3 :List(Data);
  result @4 :ObjectKey;    # as TaskSpec.result: a large result stays on the actor's node
  argRefs @5 :List(ArgRef);  # as TaskSpec.argRefs: the actor's node fetches them, in call order
  actorArgs @6 :List(ActorArg);
}

# driver -> head -> node: `kill` ends the actor at once; otherwise it ends after the calls
# already sent to it (its owner dropped the last handle).
struct StopActor {
  actor @0 :ActorKey;
  kill @1 :Bool;
}

# node -> head: the actor is gone (resources free); head -> driver when it is asked to look one up.
struct ActorExited {
  actor @0 :ActorKey;
  reason @1 :Text;
  crashed @2 :Bool;        # its worker process died (not stopped, killed or failed to construct):
                           # the head may restart it
}

struct LookupActor {
  name @0 :Text;
}

# head -> driver: the answer to createActor (name registered) or lookupActor.
struct ActorFound {
  found @0 :Bool;          # false: no live actor has that name (the other fields are unset)
  actor @1 :ActorKey;
  className @2 :Text;
}

# node -> head, and head -> driver (with the driver's task id).
struct TaskFinished {
  taskId @0 :UInt64;
  node @1 :Text;           # where it ran (last attempt)
  outcome :union {
    value @2 :Data;
    failure @3 :TaskFailure;
    stored @6 :UInt64;     # the value's size: it is held on the node, under the task's result id
  }
  systemFailure @4 :Bool;  # the worker or node died: the head may retry
  runMicros @5 :UInt64;    # how long the task ran on its worker (node -> head)
  holder @7 :Text;         # stored, head -> driver: the holder's data address
  holderName @8 :Text;     # and its data plane's name
}

# requester (driver or node) -> head: have `object` pushed to my data plane, named `peer`, on the
# channel I opened to the holder. head -> holder (pushObject): push it. holder -> head -> requester
# (objectPushed): the push ended; `error` empty once the requester holds every byte.
struct ObjectPush {
  object @0 :ObjectKey;
  peer @1 :Text;
  error @2 :Text;
  relay @3 :Bool;          # fetchObject: the requester cannot dial the holder; it dialled the
                           # head's data plane, which relays the object
  attempt @4 :UInt64;      # the requester's number for this fetch (never 0), carried through to
                           # objectPushed: an outcome of an attempt that ended is ignored
}

# driver -> head -> holders: forget these objects, or (owner != 0) every object of that owner.
struct FreeObjects {
  objects @0 :List(ObjectKey);
  owner @1 :UInt64;
}

# Every message after the handshake.
struct Envelope {
  requestId @0 :UInt64;    # 0: one-way; a reply carries the id of its request
  timeoutMs @1 :UInt32;    # 0: none; else the sender gives up on the answer after this long
                           # (drivers' requests, nodes' FetchModule; task submissions have none:
                           # a task may queue for as long as it must)
  body :union {
    ping @2 :Ping;
    pong @3 :Pong;
    error @4 :ErrorReply;
    registerNode @5 :RegisterNode;
    nodeRegistered @6 :NodeRegistered;
    heartbeat @7 :Heartbeat;
    statusRequest @8 :StatusRequest;
    clusterStatus @9 :ClusterStatus;
    uploadModule @10 :ModuleBlob;
    moduleStored @11 :ModuleRef;
    fetchModule @12 :ModuleRef;
    moduleBytes @13 :ModuleBlob;
    submitTask @14 :TaskSpec;
    runTask @15 :TaskSpec;
    taskFinished @16 :TaskFinished;
    createActor @17 :ActorSpec;
    startActor @18 :ActorSpec;
    actorCall @19 :ActorCall;
    stopActor @20 :StopActor;
    actorExited @21 :ActorExited;
    lookupActor @22 :LookupActor;
    actorFound @23 :ActorFound;
    fetchObject @24 :ObjectPush;
    pushObject @25 :ObjectPush;
    objectPushed @26 :ObjectPush;
    freeObjects @27 :FreeObjects;
  }
}

# Between a node agent and one of its worker processes (over a socketpair, same framing).
# A value in a shared-memory file on the worker's node, instead of inline: the file's descriptor
# travels with the frame (SCM_RIGHTS), one per SharedValue, in list order.
struct SharedValue {
  index @0 :UInt32;        # the argument it fills (0 in an outcome)
  offset @1 :UInt64;       # where the value starts in the file
  size @2 :UInt64;
  lend @3 :UInt64;         # node to worker: answered by `released` once the worker unmaps it
}

struct ExecuteTask {
  taskId @0 :UInt64;
  function @1 :Text;       # a registered name
  args @2 :List(Data);     # msgpack payloads, one per parameter (empty where shared)
  sharedArgs @3 :List(SharedValue);
  objectRefs @4 :List(ArgRef);  # ObjectRef parameters: the worker borrows them (args empty there)
  actorArgs @5 :List(ActorArg);   # ActorHandle parameters (args empty there)
  code @6 :CodeRef;        # a Python worker: the code `function` names, loaded on first use
}

# A binding's code (a pickled Python function or class) in the node's module store.
struct CodeRef {
  hash @0 :Text;           # SHA-256 of the file, checked by the worker before it loads it
  path @1 :Text;
}

struct TaskFailure {
  remoteType @0 :Text;     # the exception's type, or "atoll::Error" for runtime refusals
  message @1 :Text;
  traceback @2 :Text;      # a language binding's exception: the remote stack
  details @3 :Data;        # and the binding's own encoding of it (a pickled Python exception)
}

struct TaskOutcome {
  taskId @0 :UInt64;
  union {
    value @1 :Data;        # the msgpack-encoded result
    failure @2 :TaskFailure;
    shared @3 :SharedValue;  # a large result, in a shared-memory file (worker to node only)
  }
}

struct WorkerReady {
  pid @0 :UInt32;
  functions @1 :UInt32;    # how many functions the loaded module registered
}

# Makes this worker host one actor: every later ExecuteTask calls a method on it.
struct ConstructActor {
  className @0 :Text;
  args @1 :List(Data);
  maxConcurrency @2 :UInt32;
  sharedArgs @3 :List(SharedValue);
  objectRefs @4 :List(ArgRef);   # as ExecuteTask's
  actorArgs @5 :List(ActorArg);
  code @6 :CodeRef;              # as ExecuteTask's: the class
}

# Sent over the socketpair (never the environment or the command line, which other processes of
# the same user can read).
struct WorkerCluster {
  headAddress @0 :Text;
  token @1 :Text;
  dataHost @2 :Text;           # the node's data-plane hosts, for the worker's own data plane
  dataAdvertiseHost @3 :Text;
}

struct WorkerMessage {
  union {
    ready @0 :WorkerReady;
    execute @1 :ExecuteTask;
    outcome @2 :TaskOutcome;
    construct @3 :ConstructActor;   # answered by an outcome with taskId 0
    released @4 :UInt64;            # the worker unmapped the SharedValue lent with this id
    cluster @5 :WorkerCluster;      # node -> worker after ready: the cluster for nested tasks
  }
}
