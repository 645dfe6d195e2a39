// POSIX socket plumbing of the HTTP front end: the listening socket, bounded sends, and telling whether a client
// has gone away. Every call is non-blocking or bounded by a timeout, so no client can hold a thread forever.
#pragma once
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace lcllm {

// A listening TCP socket (non-blocking, close-on-exec, SO_REUSEADDR) on host:port; port 0 picks a free port, which
// `bound_port` returns. Throws lcllm::Error (ERROR_KIND_IO) naming the address when it cannot be bound.
int http_listen(const std::string& host, int port, int& bound_port);

// The client's address as text ("127.0.0.1", "::1"); "" if unknown.
std::string http_peer_address(int fd);

enum class SendResult { kSent, kTimedOut, kClosed };

// Sends all of `data` on a non-blocking socket, waiting for the socket to take more at most `timeout` in total.
SendResult http_send_all(int fd, std::string_view data, std::chrono::milliseconds timeout);

// Sends what the socket takes right now without waiting; true if all of `data` went out.
bool http_send_now(int fd, std::string_view data);

// True if the peer has closed or reset the connection (data it sent ahead, e.g. a pipelined request, is not taken
// for a close). Never blocks.
bool http_peer_gone(int fd);

// Raises this process's open-file limit to its hard limit; returns the soft limit now in force.
size_t http_raise_fd_limit();

}  // namespace lcllm
