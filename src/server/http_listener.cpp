#include "server/http_listener.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include <spdlog/spdlog.h>

#include "lcllm/error.h"
#include "server/http_socket.h"

namespace lcllm {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kReadChunk = 64 * 1024;       // bytes per recv
constexpr size_t kMaxReadPerEvent = 256 * 1024;  // per connection per loop turn, so one fast client cannot hog it
constexpr auto kLingerTime = std::chrono::seconds(2);

struct Connection {
  // kLinger: answered with a refusal and half-closed; what the client still sends is read and dropped until it
  // closes (or kLingerTime passes), so that closing does not reset the connection under the answer (RFC 9112 §9.6).
  enum class Phase { kIdle, kHead, kBody, kWorker, kLinger };
  explicit Connection(const HttpParseLimits& limits) : parser(limits) {}
  int fd = -1;
  std::string peer;    // client address, for the per-client limit
  std::string in;      // [bytes] received and not yet consumed (the start of the next request(s))
  HttpHeadParser parser;
  Phase phase = Phase::kHead;
  Clock::time_point since;     // when the current wait began (eviction takes the oldest)
  Clock::time_point deadline;  // when the current wait ends the connection
  HttpRequest request;         // the complete request a worker answers
  bool close_after = false;    // set by the worker: do not keep the connection
};

std::string chunk_frame(std::string_view piece) {
  char size[32];
  const int n = std::snprintf(size, sizeof(size), "%zx\r\n", piece.size());
  std::string out(size, size_t(n));
  out.append(piece);
  out += "\r\n";
  return out;
}

}  // namespace

struct HttpListener::State {
  HttpListenerOptions options;
  HttpRoutes routes;
  int listen_fd = -1;
  int wake_read = -1, wake_write = -1;  // self-pipe: workers and stop() wake the loop
  std::thread loop;
  std::vector<std::thread> workers;
  std::atomic<bool> stopping{false};
  std::atomic<size_t> open{0};

  // Loop thread only.
  std::unordered_map<int, std::unique_ptr<Connection>> reading;  // connections whose request is arriving
  std::unordered_map<std::string, size_t> per_client;            // open connections per client address
  Clock::time_point accept_paused_until{};

  // Shared with the workers, under mu.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::unique_ptr<Connection>> queued;     // complete requests waiting for a worker
  std::vector<std::unique_ptr<Connection>> returned;  // answered; back to the loop (keep-alive or close)
  bool workers_stop = false;
  bool loop_gone = false;

  void wake() const {
    const char b = 1;
    [[maybe_unused]] ssize_t n = write(wake_write, &b, 1);
  }

  // --- loop thread -------------------------------------------------------------------------------------------
  void run_loop();
  void accept_new();
  void add_connection(int fd, std::string peer);
  bool evict_oldest_waiting();
  void close_connection(int fd, const char* dropped_reason);
  void linger_close(Connection& c);
  void read_from(Connection& c);
  void advance(int fd);
  void expire(Clock::time_point now);
  void take_returned();
  void refuse_now(int fd, int status, const std::string& message);
  bool answer_inline(Connection& c, const HttpRequest& req, const HttpResponse& resp, bool close);

  // --- workers -----------------------------------------------------------------------------------------------
  void run_worker();
  void stop_workers();  // tells every worker to end once the queue is empty, and joins them
  // watch_peer: end a stream when the client goes (false for a client that half-closed before its request ran).
  bool write_response(int fd, const HttpRequest& req, HttpResponse& resp, bool close, bool watch_peer);
};

HttpListener::HttpListener(HttpListenerOptions options, HttpRoutes routes) : state_(std::make_unique<State>()) {
  state_->options = std::move(options);
  state_->routes = std::move(routes);
}

HttpListener::~HttpListener() { stop(); }

size_t HttpListener::open_connections() const { return state_->open.load(); }

void HttpListener::start() {
  State& s = *state_;
  // Every connection is a file descriptor: the limit must leave room for the model files, logs and the GPU
  // driver's own descriptors.
  const size_t fd_limit = http_raise_fd_limit();
  const size_t usable = fd_limit > 256 ? fd_limit - 128 : fd_limit / 2;
  if (s.options.max_connections > usable) {
    spdlog::warn("--max-connections {} is above what the open-file limit ({}) allows: using {}",
                 s.options.max_connections, fd_limit, usable);
    s.options.max_connections = usable;
  }
  s.listen_fd = http_listen(s.options.host, s.options.port, port_);
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    close(s.listen_fd);
    throw Error(ErrorKind::ERROR_KIND_IO, "cannot create the HTTP server's wake-up pipe");
  }
  s.wake_read = pipe_fds[0];
  s.wake_write = pipe_fds[1];
  try {
    for (int i = 0; i < std::max(1, s.options.workers); ++i) s.workers.emplace_back([&s] { s.run_worker(); });
    s.loop = std::thread([&s] { s.run_loop(); });
  } catch (const std::system_error& e) {
    // Leave nothing running or open: the workers that did start are told to end and joined.
    s.stop_workers();
    close(s.listen_fd);
    close(s.wake_read);
    close(s.wake_write);
    throw Error(ErrorKind::ERROR_KIND_IO, "cannot start " + std::to_string(s.options.workers) +
                                              " HTTP worker threads (" + e.what() + "): lower --http-threads");
  }
}

void HttpListener::stop() {
  State& s = *state_;
  if (!s.loop.joinable()) return;
  s.stopping.store(true);
  s.wake();
  s.loop.join();
  s.stop_workers();
  close(s.wake_read);
  close(s.wake_write);
}

// --- loop thread ---------------------------------------------------------------------------------------------

void HttpListener::State::run_loop() {
  std::vector<pollfd> fds;
  while (!stopping.load()) {
    take_returned();
    const Clock::time_point now = Clock::now();
    expire(now);

    fds.clear();
    fds.push_back({wake_read, POLLIN, 0});
    const bool accepting = now >= accept_paused_until;
    fds.push_back({accepting ? listen_fd : -1, POLLIN, 0});
    Clock::time_point next = now + std::chrono::seconds(1);
    for (const auto& [fd, c] : reading) {
      fds.push_back({fd, POLLIN, 0});
      next = std::min(next, c->deadline);
    }
    if (!accepting) next = std::min(next, accept_paused_until);
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
    const int rc = poll(fds.data(), fds.size(), int(std::clamp<int64_t>(wait, 0, 1000)));
    if (rc < 0 && errno != EINTR) {
      spdlog::error("HTTP loop: poll failed: {}", std::strerror(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    if (rc <= 0) continue;
    if (fds[0].revents) {
      char buf[256];
      while (read(wake_read, buf, sizeof(buf)) > 0) {
      }
    }
    if (fds[1].revents) accept_new();
    for (size_t i = 2; i < fds.size(); ++i) {
      if (!fds[i].revents) continue;
      auto it = reading.find(fds[i].fd);
      if (it == reading.end()) continue;
      read_from(*it->second);
      if (reading.count(fds[i].fd)) advance(fds[i].fd);
    }
  }
  // Stopping: nothing more is read; connections not being answered are closed.
  close(listen_fd);
  std::vector<int> left;
  for (const auto& [fd, c] : reading) left.push_back(fd);
  for (int fd : left) close_connection(fd, nullptr);
  std::lock_guard<std::mutex> lock(mu);
  for (auto& c : returned) {
    close(c->fd);
    open.fetch_sub(1);
  }
  returned.clear();
  loop_gone = true;
}

void HttpListener::State::accept_new() {
  while (true) {
    const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: stop polling the listener for a moment instead of spinning on it.
        spdlog::warn("HTTP: cannot accept connections ({}); pausing 100 ms", std::strerror(errno));
        accept_paused_until = Clock::now() + std::chrono::milliseconds(100);
      }
      return;
    }
    std::string peer = http_peer_address(fd);
    const size_t per_client_limit = options.max_connections_per_client;
    if (per_client_limit > 0 && per_client[peer] >= per_client_limit) {
      refuse_now(fd, 429, "too many connections from this client (at most " + std::to_string(per_client_limit) +
                              ", --max-connections-per-client)");
      close(fd);
      if (routes.on_dropped) routes.on_dropped("limit");
      continue;
    }
    if (open.load() >= options.max_connections && !evict_oldest_waiting()) {
      refuse_now(fd, 503, "the server has too many open connections; retry later");
      close(fd);
      if (routes.on_dropped) routes.on_dropped("limit");
      continue;
    }
    add_connection(fd, std::move(peer));
  }
}

void HttpListener::State::add_connection(int fd, std::string peer) {
  auto c = std::make_unique<Connection>(options.limits);
  c->fd = fd;
  c->peer = std::move(peer);
  // A new connection's first request is timed from the connect: a client that connects and sends nothing (or a
  // byte now and then) is gone after request_timeout_s.
  c->phase = Connection::Phase::kHead;
  c->since = Clock::now();
  c->deadline = c->since + std::chrono::seconds(options.request_timeout_s);
  ++per_client[c->peer];
  open.fetch_add(1);
  reading.emplace(fd, std::move(c));
}

bool HttpListener::State::evict_oldest_waiting() {
  // Idle keep-alive and lingering connections go first, then the request that has been arriving longest: under a flood of
  // stalled connections the newest client still gets in.
  int victim = -1;
  bool victim_idle = false;
  Clock::time_point oldest = Clock::time_point::max();
  for (const auto& [fd, c] : reading) {
    const bool idle = c->phase == Connection::Phase::kIdle || c->phase == Connection::Phase::kLinger;
    if ((idle && !victim_idle) || (idle == victim_idle && c->since < oldest)) {
      victim = fd;
      victim_idle = idle;
      oldest = c->since;
    }
  }
  if (victim < 0) return false;
  close_connection(victim, "evicted");
  return true;
}

void HttpListener::State::close_connection(int fd, const char* dropped_reason) {
  auto it = reading.find(fd);
  if (it == reading.end()) return;
  const std::string peer = it->second->peer;
  reading.erase(it);
  close(fd);
  open.fetch_sub(1);
  if (auto p = per_client.find(peer); p != per_client.end() && --p->second == 0) per_client.erase(p);
  if (dropped_reason && routes.on_dropped) routes.on_dropped(dropped_reason);
}

void HttpListener::State::read_from(Connection& c) {
  if (c.phase == Connection::Phase::kLinger) {
    char sink[16384];
    for (size_t got = 0; got < kMaxReadPerEvent;) {
      const ssize_t n = recv(c.fd, sink, sizeof(sink), 0);
      if (n > 0) {
        got += size_t(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
      } else {
        close_connection(c.fd, nullptr);
        return;
      }
    }
    return;
  }
  size_t got = 0;
  while (got < kMaxReadPerEvent) {
    const size_t old = c.in.size();
    c.in.resize(old + kReadChunk);
    const ssize_t n = recv(c.fd, c.in.data() + old, kReadChunk, 0);
    c.in.resize(old + size_t(std::max<ssize_t>(n, 0)));
    if (n > 0) {
      got += size_t(n);
      if (c.phase == Connection::Phase::kIdle) {
        // The next request starts: it gets the whole-request deadline.
        c.phase = Connection::Phase::kHead;
        c.since = Clock::now();
        c.deadline = c.since + std::chrono::seconds(options.request_timeout_s);
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    // Closed by the client, or reset. What arrived complete before the close is still answered by advance().
    if (c.in.empty() || c.phase == Connection::Phase::kIdle) {
      close_connection(c.fd, nullptr);
    } else {
      c.close_after = true;
    }
    return;
  }
}

void HttpListener::State::refuse_now(int fd, int status, const std::string& message) {
  HttpResponse r = routes.error(status, message);
  r.close = true;
  const std::string out = http_response_head(r, 1, true) + r.body;
  if (http_send_now(fd, out) && routes.on_response) routes.on_response(status);
}

void HttpListener::State::linger_close(Connection& c) {
  shutdown(c.fd, SHUT_WR);
  c.in.clear();
  c.in.shrink_to_fit();
  c.phase = Connection::Phase::kLinger;
  c.since = Clock::now();
  c.deadline = c.since + kLingerTime;
}

bool HttpListener::State::answer_inline(Connection& c, const HttpRequest& req, const HttpResponse& resp, bool close) {
  std::string out = http_response_head(resp, req.minor_version, close);
  if (req.method != "HEAD") out += resp.body;
  // The loop never waits on a client: an answer the socket cannot take at once (a client that pipelines requests
  // and reads no answers) ends the connection.
  const bool sent = http_send_now(c.fd, out);
  if (sent && routes.on_response) routes.on_response(resp.status);
  return sent;
}

void HttpListener::State::advance(int fd) {
  while (true) {
    auto it = reading.find(fd);
    if (it == reading.end()) return;
    Connection& c = *it->second;
    if (c.phase == Connection::Phase::kLinger) return;
    if (c.phase == Connection::Phase::kIdle || c.phase == Connection::Phase::kHead) {
      if (c.in.empty()) {
        if (c.close_after) close_connection(fd, nullptr);
        return;
      }
      if (c.phase == Connection::Phase::kIdle) {  // a pipelined request: it gets the whole-request deadline
        c.phase = Connection::Phase::kHead;
        c.since = Clock::now();
        c.deadline = c.since + std::chrono::seconds(options.request_timeout_s);
      }
      const HttpHeadParser::Result r = c.parser.parse(c.in);
      if (r == HttpHeadParser::Result::kNeedMore) {
        if (c.close_after) close_connection(fd, nullptr);  // the client closed mid-request
        return;
      }
      if (r == HttpHeadParser::Result::kError) {
        refuse_now(fd, c.parser.error().status, c.parser.error().message);
        linger_close(c);
        return;
      }
      c.in.erase(0, c.parser.head_bytes());
      const HttpRequest& head = c.parser.request();
      if (std::optional<HttpResponse> refusal = routes.before_body(head)) {
        refusal->close = true;
        answer_inline(c, head, *refusal, true);
        linger_close(c);
        return;
      }
      c.phase = Connection::Phase::kBody;
      if (head.expect_continue && c.in.size() < head.content_length && !c.close_after) {
        http_send_now(fd, "HTTP/1.1 100 Continue\r\n\r\n");
      }
    }
    HttpRequest& head = c.parser.request();
    if (c.in.size() < head.content_length) {
      if (c.close_after) close_connection(fd, nullptr);
      return;
    }
    HttpRequest req = std::move(head);
    req.body = c.in.substr(0, req.content_length);
    c.in.erase(0, req.content_length);
    c.parser.reset();
    if (routes.answer_inline(req)) {
      HttpResponse resp;
      try {
        resp = routes.handle(req);
      } catch (const std::exception& e) {
        spdlog::error("HTTP: handler of {} {} failed: {}", req.method, req.path, e.what());
        resp = routes.error(500, "internal server error");
      }
      const bool close = resp.close || !req.keep_alive() || c.close_after || stopping.load() || resp.stream;
      if (!answer_inline(c, req, resp, close) || close) {
        close_connection(fd, nullptr);
        return;
      }
      c.phase = Connection::Phase::kIdle;
      c.since = Clock::now();
      c.deadline = c.since + std::chrono::seconds(options.keep_alive_timeout_s);
      continue;  // a request pipelined behind this one
    }
    std::unique_lock<std::mutex> lock(mu);
    if (queued.size() >= options.max_queued) {
      lock.unlock();
      refuse_now(fd, 503, "every HTTP worker is busy; retry later");
      linger_close(c);
      return;
    }
    c.request = std::move(req);
    c.phase = Connection::Phase::kWorker;
    queued.push_back(std::move(it->second));
    reading.erase(it);
    lock.unlock();
    cv.notify_one();
    return;
  }
}

void HttpListener::State::expire(Clock::time_point now) {
  std::vector<std::pair<int, bool>> expired;  // [n] (fd, a request had begun arriving)
  for (const auto& [fd, c] : reading) {
    if (c->deadline <= now) {
      const bool begun = c->phase == Connection::Phase::kBody ||
                         (c->phase == Connection::Phase::kHead && !c->in.empty());
      expired.emplace_back(fd, begun);
    }
  }
  for (const auto& [fd, begun] : expired) {
    if (begun) {
      refuse_now(fd, 408, "the request did not arrive within " + std::to_string(options.request_timeout_s) +
                              " s (--read-timeout)");
    }
    const Connection::Phase phase = reading.at(fd)->phase;
    const bool quiet = phase == Connection::Phase::kIdle || phase == Connection::Phase::kLinger;
    close_connection(fd, quiet ? nullptr : "timeout");
  }
}

void HttpListener::State::take_returned() {
  std::vector<std::unique_ptr<Connection>> back;
  {
    std::lock_guard<std::mutex> lock(mu);
    back.swap(returned);
  }
  for (auto& c : back) {
    const int fd = c->fd;
    const bool close_it = c->close_after;
    c->phase = Connection::Phase::kIdle;
    c->since = Clock::now();
    c->deadline = c->since + std::chrono::seconds(options.keep_alive_timeout_s);
    c->request = HttpRequest{};
    reading.emplace(fd, std::move(c));
    if (close_it) {
      close_connection(fd, nullptr);
    } else {
      advance(fd);  // a request that was pipelined behind the answered one
    }
  }
}

// --- workers -------------------------------------------------------------------------------------------------

void HttpListener::State::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mu);
    workers_stop = true;
  }
  cv.notify_all();
  for (std::thread& t : workers) t.join();
  workers.clear();
}

void HttpListener::State::run_worker() {
  while (true) {
    std::unique_ptr<Connection> c;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [this] { return workers_stop || !queued.empty(); });
      if (queued.empty()) return;
      c = std::move(queued.front());
      queued.pop_front();
    }
    HttpRequest& req = c->request;
    // A client that half-closed before its request was dispatched (it sent, then shut down its side) still reads the
    // answer: EOF means "gone" only when it arrives later (as nginx takes it, 499).
    const int fd = c->fd;
    const bool half_closed = c->close_after;
    if (!half_closed) req.client_gone = [fd] { return http_peer_gone(fd); };
    bool ok = false;
    bool close = true;
    {
      HttpResponse resp;
      try {
        resp = routes.handle(req);
      } catch (const std::exception& e) {
        spdlog::error("HTTP: handler of {} {} failed: {}", req.method, req.path, e.what());
        resp = routes.error(500, "internal server error");
      }
      close = resp.close || !req.keep_alive() || c->close_after || stopping.load() ||
              (resp.stream && req.minor_version == 0);
      ok = write_response(c->fd, req, resp, close, !half_closed);
    }  // the response (and a stream's request) is released before the connection goes back
    c->close_after = close || !ok;
    std::lock_guard<std::mutex> lock(mu);
    if (loop_gone) {
      ::close(c->fd);
      open.fetch_sub(1);
    } else {
      returned.push_back(std::move(c));
      wake();
    }
  }
}

bool HttpListener::State::write_response(int fd, const HttpRequest& req, HttpResponse& resp, bool close,
                                          bool watch_peer) {
  const auto timeout = std::chrono::milliseconds(int64_t(options.write_timeout_s) * 1000);
  const bool head_only = req.method == "HEAD";
  std::string out = http_response_head(resp, req.minor_version, close);
  if (!resp.stream && !head_only) out += resp.body;
  if (http_send_all(fd, out, timeout) != SendResult::kSent) return false;
  if (routes.on_response) routes.on_response(resp.status);
  if (!resp.stream || head_only) return true;
  const bool chunked = req.minor_version >= 1;
  while (true) {
    std::string piece;
    bool more = false;
    try {
      more = resp.stream(piece);
    } catch (const std::exception& e) {
      spdlog::error("HTTP: stream of {} {} failed: {}", req.method, req.path, e.what());
      return false;  // the client sees the stream end without its terminating chunk
    }
    if (!piece.empty() && http_send_all(fd, chunked ? chunk_frame(piece) : piece, timeout) != SendResult::kSent) {
      return false;
    }
    if (!more) break;
    if (watch_peer && http_peer_gone(fd)) return false;
  }
  return !chunked || http_send_all(fd, "0\r\n\r\n", timeout) == SendResult::kSent;
}

}  // namespace lcllm
