#include "transport/data_channel.hpp"

#include <asio/post.hpp>
#include <cstring>

namespace atl::transport {

namespace wire = data_wire;

namespace {
// Room for headers and whole control messages; a chunk's payload goes straight to its buffer.
constexpr std::size_t kStagingBytes = 16 * 1024;
static_assert(kStagingBytes >= 2 * (wire::kHeaderBytes + wire::kMaxControlBodyBytes));
}  // namespace

bool PlaneGate::post(std::function<void()> fn) {
  std::lock_guard lock(mu_);
  if (!open_) return false;
  asio::post(io_, std::move(fn));
  return true;
}

void PlaneGate::shut() {
  std::lock_guard lock(mu_);
  open_ = false;
}

struct ChannelImpl::Outgoing {
  std::uint64_t id = 0;
  ObjectId object;
  Buffer bytes;
  SendCallback done;
  bool eager = false;
  bool accepted = false;
  bool finished = false;
  std::uint64_t next_offset = 0;  // the first byte not yet assigned to a chunk
};

struct ChannelImpl::Incoming {
  std::uint64_t transfer_id = 0;
  IncomingObject info;
  MutableBuffer buffer;
  std::uint32_t chunk_bytes = 0;
  std::vector<std::uint64_t> claimed;  // one bit per chunk: a chunk is accepted once
  std::uint64_t received = 0;
  bool refused = false;  // an eager transfer that was refused: its chunk is read and dropped
};

struct ChannelImpl::Stream {
  ByteStreamPtr io;
  // Writing.
  bool writing = false;
  std::vector<std::byte> control;  // encoded messages for the next write
  std::deque<OutgoingPtr> pinned;  // eager chunks, each after its OFFER on this stream
  std::uint64_t credit_to_return = 0;
  std::vector<std::byte> wbuf;  // the write in progress: messages, then a chunk header
  OutgoingPtr wtransfer;        // keeps that chunk's payload alive
  std::uint64_t credit = 0;     // bytes this side may still write as chunks
  std::uint64_t in_flight = 0;  // written (or queued) and not yet credited back
  // Reading.
  std::vector<std::byte> staging = std::vector<std::byte>(kStagingBytes);
  std::size_t begin = 0, end = 0;
  // Flow control as the receiver sees it: the peer may have sent at most the window plus every
  // credit this side has written so far; chunk bytes beyond that break the protocol.
  std::uint64_t granted = 0;
  std::uint64_t received = 0;
};

ChannelImpl::ChannelImpl(std::shared_ptr<PlaneGate> gate, std::vector<ByteStreamPtr> streams,
                         ChannelConfig config, std::shared_ptr<const ReceiveHandlers> handlers,
                         std::function<void(ChannelImpl*)> on_closed)
    : gate_(std::move(gate)),
      config_(std::move(config)),
      backend_(streams.front()->backend()),
      handlers_(std::move(handlers)),
      on_closed_(std::move(on_closed)),
      last_activity_(std::chrono::steady_clock::now()) {
  for (auto& io_stream : streams) {
    auto s = std::make_unique<Stream>();
    s->io = std::move(io_stream);
    s->credit = config_.send_window_bytes;
    s->granted = config_.recv_window_bytes;
    streams_.push_back(std::move(s));
  }
}

ChannelImpl::~ChannelImpl() = default;

std::string ChannelImpl::describe() const {
  return "data channel to '" + config_.peer_name + "' (" + config_.remote + ", " +
         std::string(to_string(backend_)) + ")";
}

void ChannelImpl::start() {
  for (auto& s : streams_) read_more(*s);
}

// ---- sending ----------------------------------------------------------------------------------

void ChannelImpl::send(ObjectId id, Buffer bytes, SendCallback done) {
  auto self = shared_from_this();
  if (!gate_->post([self, id, bytes, done] { self->enqueue(id, bytes, done); }) && done)
    done(Error(ErrorCategory::disconnected, describe() + " is closed: the data plane stopped"));
}

void ChannelImpl::close() {
  auto self = shared_from_this();
  gate_->post([self] {
    self->fail(Error(ErrorCategory::cancelled, self->describe() + " was closed locally"));
  });
}

void ChannelImpl::enqueue(ObjectId id, Buffer bytes, SendCallback done) {
  if (closed()) {
    if (done) done(Error(ErrorCategory::disconnected, describe() + " is closed"));
    return;
  }
  auto t = std::make_shared<Outgoing>();
  t->id = next_transfer_id_++;
  t->object = id;
  t->bytes = std::move(bytes);
  t->done = std::move(done);
  (t->bytes.size() <= config_.send_chunk_bytes ? small_queue_ : large_queue_).push_back(t);
  offer_queued();
}

void ChannelImpl::offer_queued() {
  auto note_in_flight = [this](Stream& s, std::uint64_t n) {
    s.credit -= n;
    s.in_flight += n;
    in_flight_.fetch_add(n, std::memory_order_relaxed);
    if (s.in_flight > peak_in_flight_.load(std::memory_order_relaxed))
      peak_in_flight_.store(s.in_flight, std::memory_order_relaxed);
  };
  while (!closed() && !small_queue_.empty() && offered_.size() < kMaxOffered) {
    OutgoingPtr t = small_queue_.front();
    const std::uint64_t size = t->bytes.size();
    Stream* target = streams_.front().get();
    for (auto& s : streams_)
      if (s->credit > target->credit) target = s.get();
    if (size > target->credit) break;  // waits for credit
    t->eager = size > 0;
    wire::append_offer(target->control, {.transfer_id = t->id,
                                         .size = size,
                                         .object = t->object,
                                         .chunk_bytes = config_.send_chunk_bytes,
                                         .eager = t->eager});
    if (t->eager) {
      target->pinned.push_back(t);
      note_in_flight(*target, size);
      t->next_offset = size;
    }
    offered_.emplace(t->id, t);
    small_queue_.pop_front();
    pump(*target);
  }
  while (!closed() && !large_queue_.empty() && offered_.size() < kMaxOffered &&
         large_offered_ < kMaxLargeOffered) {
    OutgoingPtr t = large_queue_.front();
    Stream& target = *streams_[t->id % streams_.size()];
    wire::append_offer(target.control, {.transfer_id = t->id,
                                        .size = t->bytes.size(),
                                        .object = t->object,
                                        .chunk_bytes = config_.send_chunk_bytes});
    offered_.emplace(t->id, t);
    ++large_offered_;
    large_queue_.pop_front();
    pump(target);
  }
}

void ChannelImpl::pump(Stream& s) {
  if (closed() || s.writing) return;
  s.wbuf.clear();
  // Credit first: a COMPLETE behind it then finds every byte of its transfer acknowledged.
  if (s.credit_to_return > 0) {
    wire::append_credit(s.wbuf, s.credit_to_return);
    s.granted += s.credit_to_return;
    s.credit_to_return = 0;
  }
  s.wbuf.insert(s.wbuf.end(), s.control.begin(), s.control.end());
  s.control.clear();
  std::span<const std::byte> payload;
  OutgoingPtr chunk_of;
  std::uint64_t offset = 0;
  if (!s.pinned.empty()) {
    chunk_of = std::move(s.pinned.front());
    s.pinned.pop_front();
    payload = chunk_of->bytes.bytes();
  } else if (!sending_.empty()) {
    const OutgoingPtr& t = sending_.front();
    const std::uint64_t size = t->bytes.size();
    const std::uint64_t length =
        std::min<std::uint64_t>(config_.send_chunk_bytes, size - t->next_offset);
    if (length <= s.credit) {
      chunk_of = t;
      offset = t->next_offset;
      payload = t->bytes.bytes().subspan(offset, length);
      t->next_offset += length;
      s.credit -= length;
      s.in_flight += length;
      in_flight_.fetch_add(length, std::memory_order_relaxed);
      if (s.in_flight > peak_in_flight_.load(std::memory_order_relaxed))
        peak_in_flight_.store(s.in_flight, std::memory_order_relaxed);
      if (t->next_offset == size) sending_.pop_front();
    }
  }
  if (chunk_of) {
    auto header =
        wire::chunk_header(chunk_of->id, offset, static_cast<std::uint32_t>(payload.size()));
    s.wbuf.insert(s.wbuf.end(), header.begin(), header.end());
  }
  if (s.wbuf.empty()) return;
  s.writing = true;
  s.wtransfer = std::move(chunk_of);
  bytes_sent_.fetch_add(payload.size(), std::memory_order_relaxed);
  s.io->write(s.wbuf, payload, [self = shared_from_this(), &s](IoError error) {
    s.writing = false;
    s.wtransfer.reset();
    if (self->closed()) return;
    if (error) return self->fail(Error(error->category(), self->describe() + ": " + error->what()));
    self->touch();
    self->pump(s);
  });
}

void ChannelImpl::pump_all() {
  for (auto& s : streams_) pump(*s);
}

void ChannelImpl::finish(const OutgoingPtr& t, IoError error) {
  if (t->finished) return;
  t->finished = true;
  auto done = std::move(t->done);
  if (done) done(std::move(error));
}

ChannelImpl::OutgoingPtr ChannelImpl::take_offered(std::uint64_t id) {
  auto it = offered_.find(id);
  if (it == offered_.end()) return nullptr;
  OutgoingPtr t = std::move(it->second);
  offered_.erase(it);
  if (!t->eager && !t->bytes.empty()) --large_offered_;
  return t;
}

// ---- receiving --------------------------------------------------------------------------------

void ChannelImpl::read_more(Stream& s) {
  if (closed()) return;
  if (s.begin == s.end) {
    s.begin = s.end = 0;
  } else if (s.staging.size() - s.end < wire::kHeaderBytes + wire::kMaxControlBodyBytes) {
    std::memmove(s.staging.data(), s.staging.data() + s.begin, s.end - s.begin);
    s.end -= s.begin;
    s.begin = 0;
  }
  std::span<std::byte> room(s.staging.data() + s.end, s.staging.size() - s.end);
  s.io->read_some(room, [self = shared_from_this(), &s](IoError error, std::size_t n) {
    if (self->closed()) return;
    if (error) return self->fail(Error(error->category(), self->describe() + ": " + error->what()));
    s.end += n;
    self->touch();
    self->parse(s);
  });
}

void ChannelImpl::parse(Stream& s) {
  while (!closed()) {
    const std::size_t avail = s.end - s.begin;
    if (avail < wire::kHeaderBytes) return read_more(s);
    std::string why;
    auto h = wire::decode_header(std::span<const std::byte, wire::kHeaderBytes>(
                                     s.staging.data() + s.begin, wire::kHeaderBytes),
                                 wire::Phase::open, config_.recv_max_chunk_bytes, why);
    if (!h) {
      violation(why);
      return;
    }
    if (h->type == wire::MessageType::chunk) {
      if (!on_chunk(s, *h)) return;  // the payload is being read; its completion resumes here
      continue;
    }
    if (avail < wire::kHeaderBytes + h->body_length) return read_more(s);
    std::span<const std::byte> body(s.staging.data() + s.begin + wire::kHeaderBytes,
                                    h->body_length);
    s.begin += wire::kHeaderBytes + h->body_length;
    if (!on_message(s, *h, body)) return;
  }
}

bool ChannelImpl::violation(const std::string& what) {
  fail(Error(ErrorCategory::failed, describe() + ": the peer broke the protocol: " + what));
  return false;
}

bool ChannelImpl::on_message(Stream& s, const wire::Header& h, std::span<const std::byte> body) {
  using wire::MessageType;
  const std::string id = std::to_string(h.id);
  switch (h.type) {
    case MessageType::offer:
      return on_offer(s, h, body);
    case MessageType::accept: {
      auto it = offered_.find(h.id);
      if (it == offered_.end() || it->second->eager || it->second->accepted ||
          it->second->bytes.empty())
        return violation("ACCEPT for transfer " + id + ", which awaits no acceptance");
      it->second->accepted = true;
      sending_.push_back(it->second);
      pump_all();
      return !closed();
    }
    case MessageType::reject: {
      std::string why;
      auto category = wire::decode_reject_category(h, why);
      if (!category) return violation(why);
      auto it = offered_.find(h.id);
      if (it == offered_.end() || it->second->accepted)
        return violation("REJECT for transfer " + id + ", which cannot be refused now");
      OutgoingPtr t = take_offered(h.id);
      finish(t,
             Error(*category, "'" + config_.peer_name + "' refused object " +
                                  t->object.to_string() + " (" + std::to_string(t->bytes.size()) +
                                  " bytes): " + wire::decode_reject_message(body)));
      offer_queued();
      return !closed();
    }
    case MessageType::credit:
      if (h.value > s.in_flight)
        return violation("CREDIT of " + std::to_string(h.value) + " bytes, more than the " +
                         std::to_string(s.in_flight) + " in flight");
      s.in_flight -= h.value;
      s.credit += h.value;
      in_flight_.fetch_sub(h.value, std::memory_order_relaxed);
      pump(s);
      offer_queued();
      return !closed();
    case MessageType::complete: {
      auto it = offered_.find(h.id);
      if (it == offered_.end() || it->second->next_offset != it->second->bytes.size())
        return violation("COMPLETE for transfer " + id + ", which is not fully sent");
      OutgoingPtr t = take_offered(h.id);
      objects_sent_.fetch_add(1, std::memory_order_relaxed);
      finish(t, std::nullopt);
      offer_queued();
      return !closed();
    }
    default:  // CHUNK is handled by parse(); handshake types never pass decode_header here
      return violation("unexpected message");
  }
}

bool ChannelImpl::on_offer(Stream& s, const wire::Header& h, std::span<const std::byte> body) {
  std::string why;
  auto offer = wire::decode_offer(h, body, why);
  if (!offer) return violation(why);
  const std::string id = std::to_string(offer->transfer_id);
  if (incoming_.contains(offer->transfer_id)) return violation("OFFER reuses transfer id " + id);
  if (incoming_.size() >= kMaxIncoming)
    return violation("more than " + std::to_string(kMaxIncoming) + " transfers at once");
  if (offer->chunk_bytes > config_.recv_max_chunk_bytes ||
      offer->chunk_bytes > config_.recv_window_bytes)
    return violation("OFFER with chunks of " + std::to_string(offer->chunk_bytes) +
                     " bytes, above this side's limit");

  auto t = std::make_shared<Incoming>();
  t->transfer_id = offer->transfer_id;
  t->info = {.id = offer->object, .size = offer->size, .peer = config_.peer_name};
  t->chunk_bytes = offer->chunk_bytes;

  auto refuse = [&](const Error& error) {
    wire::append_reject(s.control, offer->transfer_id, error.category(), error.what());
    if (offer->eager) {  // its chunk is on the way: read it and drop it
      t->refused = true;
      incoming_.emplace(t->transfer_id, t);
    }
    pump(s);
    return !closed();
  };
  if (offer->size > config_.max_object_bytes)
    return refuse(Error(ErrorCategory::invalid_argument,
                        "an object of " + std::to_string(offer->size) +
                            " bytes exceeds this node's limit of " +
                            std::to_string(config_.max_object_bytes) + " bytes"));
  if (!handlers_->allocate)
    return refuse(Error(ErrorCategory::failed, "this node accepts no objects"));
  Allocation allocation;
  try {
    allocation = handlers_->allocate(t->info);
  } catch (const Error& e) {
    allocation = Allocation::refuse(e);
  } catch (const std::exception& e) {
    allocation = Allocation::refuse(
        Error(ErrorCategory::failed, std::string("allocation failed: ") + e.what()));
  }
  if (allocation.refusal) return refuse(*allocation.refusal);
  if (allocation.buffer.size() != offer->size)
    return refuse(Error(ErrorCategory::failed, "the receiver's allocator returned " +
                                                   std::to_string(allocation.buffer.size()) +
                                                   " bytes for an object of " +
                                                   std::to_string(offer->size)));
  t->buffer = std::move(allocation.buffer);
  const std::uint64_t chunks = (offer->size + offer->chunk_bytes - 1) / offer->chunk_bytes;
  t->claimed.assign((chunks + 63) / 64, 0);
  incoming_.emplace(t->transfer_id, t);
  if (offer->size == 0) {
    deliver(s, t);
  } else if (!offer->eager) {
    wire::append_accept(s.control, offer->transfer_id);
    pump(s);
  }
  return !closed();
}

bool ChannelImpl::on_chunk(Stream& s, const wire::Header& h) {
  auto it = incoming_.find(h.id);
  if (it == incoming_.end()) return violation("CHUNK for unknown transfer " + std::to_string(h.id));
  IncomingPtr t = it->second;
  const std::uint32_t length = h.body_length;
  const std::uint64_t offset = h.value;
  const std::uint64_t size = t->info.size;
  if (length > s.granted - s.received)
    return violation("CHUNK of " + std::to_string(length) + " bytes beyond the stream's credit");
  if (t->refused) {
    if (offset != 0 || length != size) return violation("eager CHUNK does not hold the object");
  } else {
    if (offset >= size || offset % t->chunk_bytes != 0 ||
        length != std::min<std::uint64_t>(t->chunk_bytes, size - offset))
      return violation("CHUNK at offset " + std::to_string(offset) + " of " +
                       std::to_string(length) + " bytes does not fit an object of " +
                       std::to_string(size) + " bytes in chunks of " +
                       std::to_string(t->chunk_bytes));
    const std::uint64_t index = offset / t->chunk_bytes;
    std::uint64_t& word = t->claimed[index / 64];
    const std::uint64_t bit = std::uint64_t{1} << (index % 64);
    if (word & bit) return violation("CHUNK at offset " + std::to_string(offset) + " sent twice");
    word |= bit;
  }
  s.received += length;
  s.begin += wire::kHeaderBytes;
  const std::size_t take = std::min<std::size_t>(s.end - s.begin, length);
  if (t->refused) {
    s.begin += take;
    if (take == length) {
      payload_done(s, t, length);
      return !closed();
    }
    discard(s, std::move(t), length - take, length);
    return false;
  }
  std::memcpy(t->buffer.data() + offset, s.staging.data() + s.begin, take);
  s.begin += take;
  if (take == length) {
    payload_done(s, t, length);
    return !closed();
  }
  std::span<std::byte> rest(t->buffer.data() + offset + take, length - take);
  s.io->read_exact(rest, [self = shared_from_this(), &s, t, length](IoError error, std::size_t) {
    if (self->closed()) return;
    if (error) return self->fail(Error(error->category(), self->describe() + ": " + error->what()));
    self->touch();
    self->payload_done(s, t, length);
    self->parse(s);
  });
  return false;
}

void ChannelImpl::discard(Stream& s, IncomingPtr t, std::uint64_t remaining, std::uint32_t length) {
  s.begin = s.end = 0;
  std::span<std::byte> room(s.staging.data(), std::min<std::uint64_t>(remaining, s.staging.size()));
  s.io->read_some(room, [self = shared_from_this(), &s, t = std::move(t), remaining, length](
                            IoError error, std::size_t n) mutable {
    if (self->closed()) return;
    if (error) return self->fail(Error(error->category(), self->describe() + ": " + error->what()));
    self->touch();
    if (n < remaining) return self->discard(s, std::move(t), remaining - n, length);
    self->payload_done(s, t, length);
    self->parse(s);
  });
}

void ChannelImpl::payload_done(Stream& s, const IncomingPtr& t, std::uint32_t length) {
  s.credit_to_return += length;
  if (t->refused) {
    incoming_.erase(t->transfer_id);
  } else {
    bytes_received_.fetch_add(length, std::memory_order_relaxed);
    t->received += length;
    if (handlers_->on_progress) handlers_->on_progress(t->info, t->received);
    if (closed()) return;
    if (t->received == t->info.size) return deliver(s, t);
  }
  pump(s);
}

void ChannelImpl::deliver(Stream& s, const IncomingPtr& t) {
  incoming_.erase(t->transfer_id);
  objects_received_.fetch_add(1, std::memory_order_relaxed);
  if (handlers_->on_received) handlers_->on_received(t->info, std::move(t->buffer));
  wire::append_complete(s.control, t->transfer_id);
  pump(s);
}

// ---- failure ----------------------------------------------------------------------------------

void ChannelImpl::fail(const Error& error) {
  if (closed_.exchange(true, std::memory_order_acq_rel)) return;
  // Handlers still pending see closed() first and touch nothing else; dropping the streams here
  // lets them go with the plane's io_context even if a user keeps this channel.
  for (auto& s : streams_) {
    s->io->close();
    s->io.reset();
    s->pinned.clear();
  }
  std::vector<OutgoingPtr> sends(small_queue_.begin(), small_queue_.end());
  sends.insert(sends.end(), large_queue_.begin(), large_queue_.end());
  for (auto& [id, t] : offered_) sends.push_back(t);
  small_queue_.clear();
  large_queue_.clear();
  offered_.clear();
  sending_.clear();
  std::vector<IncomingPtr> receives;
  for (auto& [id, t] : incoming_)
    if (!t->refused) receives.push_back(t);
  incoming_.clear();
  in_flight_.store(0, std::memory_order_relaxed);
  for (auto& t : sends) finish(t, error);
  if (handlers_->on_failed)
    for (auto& t : receives) handlers_->on_failed(t->info, error);
  if (on_closed_) on_closed_(this);
}

bool ChannelImpl::stalled_since(std::chrono::steady_clock::time_point since) const {
  const bool busy = !offered_.empty() || !incoming_.empty();
  return busy && last_activity_ < since;
}

ChannelStats ChannelImpl::stats() const {
  ChannelStats out;
  out.bytes_sent = bytes_sent_.load(std::memory_order_relaxed);
  out.bytes_received = bytes_received_.load(std::memory_order_relaxed);
  out.objects_sent = objects_sent_.load(std::memory_order_relaxed);
  out.objects_received = objects_received_.load(std::memory_order_relaxed);
  out.window_bytes = config_.send_window_bytes;
  out.in_flight_bytes = in_flight_.load(std::memory_order_relaxed);
  out.peak_stream_in_flight_bytes = peak_in_flight_.load(std::memory_order_relaxed);
  out.chunk_bytes = config_.send_chunk_bytes;
  out.streams = streams_.size();
  return out;
}

}  // namespace atl::transport
