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

# Every message after the handshake.
struct Envelope {
  requestId @0 :UInt64;    # 0: one-way; a reply carries the id of its request
  timeoutMs @1 :UInt32;    # 0: none; otherwise the request expires this long after it arrives
  body :union {
    ping @2 :Ping;
    pong @3 :Pong;
    error @4 :ErrorReply;
  }
}
