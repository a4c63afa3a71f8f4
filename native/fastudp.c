// Batched UDP I/O for fleetcast (Linux): recvmmsg/sendmmsg on a non-blocking socket watched by a libuv poll
// handle. Node's dgram costs a syscall, a Buffer, an address object and a JS callback per datagram; here one
// readiness event lets JS take up to `batch` datagrams per native call, received straight into a ring that JS
// sees as one ArrayBuffer (reused for every batch: no copy and no fresh memory per datagram), with the
// source addresses interned (an id per datagram, the text made once per address).
//
// JS protocol (src/transport/native.ts wraps it):
//   const s = new UdpSocket(family 4|6, onReady(events), batch, slotBytes)
//   s.ring: ArrayBuffer of batch × slotBytes: datagram i of the last read() is at meta offset[i]; read()
//     overwrites it, so JS uses (or copies) a datagram before reading again
//   s.meta: ArrayBuffer of uint32 [count, epoch, length × batch, source id × batch, offset × batch], filled by read()
//   s.read(): how many datagrams one recvmmsg took (0: none waiting, or the socket is closed)
//   s.send(parts[], partCounts Uint8Array, destIds Uint32Array, n): datagrams handed to the kernel (< n:
//     would block, or s.sendError() tells the error of datagram number `sent`, which is then skipped)
//   onReady(1 readable | 2 writable) is called from the event loop; s.wantWritable() asks for one 2.
//   s.pause() stops the readable notices until s.start() again (the kernel keeps queueing datagrams).
// It also carries the one file call receivers need that Node lacks: flushRange(fd, offset, length).
#define _GNU_SOURCE
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#define READABLE 1
#define WRITABLE 2
/** Past this many distinct source addresses the table starts over (a flood of forged sources stays bounded). */
#define MAX_ADDRESSES 65536

typedef struct {
  uint16_t family;
  uint16_t port;  // network order
  uint32_t scope;
  uint8_t addr[16];
} AddrKey;

typedef struct {
  napi_env env;
  napi_ref self;       // strong while the poll handle is open: an active socket is not collected
  napi_ref on_ready;
  napi_ref meta_ref;
  napi_ref ring_ref;   // the ring is a JS ArrayBuffer (JS holds views of it): V8 owns and frees it
  uint32_t* meta;
  napi_async_context async_ctx;
  int fd;
  int family;
  uv_poll_t poll;
  int poll_open;       // uv_poll_init done, uv_close not yet completed
  int events;          // UV_ events currently watched
  int closed;          // close() called
  int finalized;       // JS object collected
  unsigned batch;
  size_t slot;
  unsigned char* ring;
  struct mmsghdr* msgs;
  struct iovec* iovs;
  struct sockaddr_storage* names;
  struct mmsghdr* out_msgs;
  struct iovec* out_iovs;
  size_t out_iov_cap;
  int send_errno;
  double datagrams, truncated, recv_errors;
  int last_recv_errno;
  // Source address table: open addressing from hash to id + 1; ids index keys.
  AddrKey* keys;
  uint32_t* slots;
  uint32_t key_count, slot_cap;
  uint32_t epoch;
} Sock;

/** The I/O buffers go as soon as the socket is closed; the address table stays for addressName(). */
static void free_buffers(Sock* s) {
  free(s->msgs);
  free(s->iovs);
  free(s->names);
  free(s->out_msgs);
  free(s->out_iovs);
  s->ring = NULL;
  s->msgs = s->out_msgs = NULL;
  s->iovs = s->out_iovs = NULL;
  s->names = NULL;
}

static void free_sock(Sock* s) {
  free_buffers(s);
  free(s->keys);
  free(s->slots);
  free(s);
}

// ---- errors -------------------------------------------------------------------------------------------------

static napi_value throw_errno(napi_env env, const char* what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  const char* code = NULL;
  switch (err) {
    case EADDRINUSE: code = "EADDRINUSE"; break;
    case EADDRNOTAVAIL: code = "EADDRNOTAVAIL"; break;
    case EACCES: code = "EACCES"; break;
    case EINVAL: code = "EINVAL"; break;
    case ENODEV: code = "ENODEV"; break;
    case EBADF: code = "EBADF"; break;
    default: code = "ESYSCALL";
  }
  napi_throw_error(env, code, msg);
  return NULL;
}

#define CHECK_NAPI(call)                                      \
  do {                                                        \
    if ((call) != napi_ok) {                                  \
      bool pending_;                                          \
      napi_is_exception_pending(env, &pending_);              \
      if (!pending_) napi_throw_error(env, NULL, #call " failed"); \
      return NULL;                                            \
    }                                                         \
  } while (0)

/** The socket `this` wraps, closed or not (for methods without arguments); NULL when it has thrown. */
static Sock* unwrap_any(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value self;
  Sock* s;
  if (napi_get_cb_info(env, info, &argc, NULL, &self, NULL) != napi_ok || napi_unwrap(env, self, (void**)&s) != napi_ok) {
    napi_throw_type_error(env, NULL, "not a UdpSocket");
    return NULL;
  }
  return s;
}

static Sock* unwrap_open(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv) {
  napi_value self;
  Sock* s;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, self, (void**)&s) != napi_ok) {
    napi_throw_type_error(env, NULL, "not a UdpSocket");
    return NULL;
  }
  if (s->closed) {
    napi_throw_error(env, "ERR_SOCKET_CLOSED", "the socket is closed");
    return NULL;
  }
  return s;
}

static napi_value undefined_value(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

/** Method prologue: `s`, the open socket `this` wraps, and its n arguments in argv (else it has thrown). */
#define OPEN_SOCKET_ARGS(n)                                 \
  size_t argc = n;                                          \
  napi_value argv[n];                                       \
  Sock* s = unwrap_open(env, info, &argc, argv);            \
  if (!s) return NULL

static int get_string(napi_env env, napi_value v, char* buf, size_t cap) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, buf, cap, &len) != napi_ok) return -1;
  return len + 1 < cap ? 0 : -1;
}

static int get_int(napi_env env, napi_value v, int32_t* out) {
  return napi_get_value_int32(env, v, out) == napi_ok ? 0 : -1;
}

// ---- addresses ----------------------------------------------------------------------------------------------

/** "a.b.c.d", "v6" or "v6%ifname"/"v6%index" (the scope names the interface) into a sockaddr; 0 on success. */
static int parse_address(int family, const char* text, int port, struct sockaddr_storage* out, socklen_t* len) {
  memset(out, 0, sizeof *out);
  if (family == 4) {
    struct sockaddr_in* a = (struct sockaddr_in*)out;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (text[0] && inet_pton(AF_INET, text, &a->sin_addr) != 1) return -1;
    *len = sizeof *a;
    return 0;
  }
  struct sockaddr_in6* a = (struct sockaddr_in6*)out;
  a->sin6_family = AF_INET6;
  a->sin6_port = htons((uint16_t)port);
  char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  if (strlen(text) >= sizeof host) return -1;
  strcpy(host, text);
  char* scope = strchr(host, '%');
  if (scope) {
    *scope++ = 0;
    char* end;
    unsigned long n = strtoul(scope, &end, 10);
    a->sin6_scope_id = *end == 0 && end != scope ? (uint32_t)n : if_nametoindex(scope);
    if (a->sin6_scope_id == 0) return -1;
  }
  if (host[0] && inet_pton(AF_INET6, host, &a->sin6_addr) != 1) return -1;
  *len = sizeof *a;
  return 0;
}

static void key_of(const struct sockaddr_storage* sa, AddrKey* k) {
  memset(k, 0, sizeof *k);
  k->family = sa->ss_family;
  if (sa->ss_family == AF_INET) {
    const struct sockaddr_in* a = (const struct sockaddr_in*)sa;
    k->port = a->sin_port;
    memcpy(k->addr, &a->sin_addr, 4);
  } else {
    const struct sockaddr_in6* a = (const struct sockaddr_in6*)sa;
    k->port = a->sin6_port;
    k->scope = a->sin6_scope_id;
    memcpy(k->addr, &a->sin6_addr, 16);
  }
}

static void sockaddr_of(const AddrKey* k, struct sockaddr_storage* sa, socklen_t* len) {
  memset(sa, 0, sizeof *sa);
  if (k->family == AF_INET) {
    struct sockaddr_in* a = (struct sockaddr_in*)sa;
    a->sin_family = AF_INET;
    a->sin_port = k->port;
    memcpy(&a->sin_addr, k->addr, 4);
    *len = sizeof *a;
  } else {
    struct sockaddr_in6* a = (struct sockaddr_in6*)sa;
    a->sin6_family = AF_INET6;
    a->sin6_port = k->port;
    a->sin6_scope_id = k->scope;
    memcpy(&a->sin6_addr, k->addr, 16);
    *len = sizeof *a;
  }
}

static uint32_t hash_key(const AddrKey* k) {
  const uint8_t* p = (const uint8_t*)k;
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < sizeof *k; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

static int table_reset(Sock* s, uint32_t cap) {
  uint32_t* slots = calloc(cap, sizeof *slots);
  AddrKey* keys = realloc(s->keys, (size_t)(cap / 2) * sizeof *keys);
  if (!slots || !keys) {
    free(slots);
    if (keys) s->keys = keys;
    return -1;
  }
  free(s->slots);
  s->slots = slots;
  s->keys = keys;
  s->slot_cap = cap;
  return 0;
}

/**
 * Makes room for `need` new addresses before a call that may add them: past MAX_ADDRESSES every address is
 * forgotten at once and the epoch moves on (JS then drops the names and ids it holds). Only done between calls,
 * so the ids of one batch are all of one epoch.
 */
static void ensure_room(Sock* s, uint32_t need) {
  if (s->key_count + need <= MAX_ADDRESSES) return;
  memset(s->slots, 0, s->slot_cap * sizeof *s->slots);
  s->key_count = 0;
  s->epoch++;
  s->meta[1] = s->epoch;
}

/** The id of an address, added if new (ensure_room first); UINT32_MAX when out of memory. */
static uint32_t intern(Sock* s, const AddrKey* k) {
  uint32_t mask = s->slot_cap - 1;
  for (uint32_t i = hash_key(k) & mask;; i = (i + 1) & mask) {
    uint32_t v = s->slots[i];
    if (v == 0) break;
    if (memcmp(&s->keys[v - 1], k, sizeof *k) == 0) return v - 1;
  }
  if (s->key_count + 1 > s->slot_cap / 2) {
    uint32_t count = s->key_count;
    if (table_reset(s, s->slot_cap * 2) != 0) return UINT32_MAX;
    mask = s->slot_cap - 1;
    for (uint32_t id = 0; id < count; id++) {
      uint32_t i = hash_key(&s->keys[id]) & mask;
      while (s->slots[i]) i = (i + 1) & mask;
      s->slots[i] = id + 1;
    }
  }
  uint32_t id = s->key_count++;
  s->keys[id] = *k;
  uint32_t i = hash_key(k) & mask;
  while (s->slots[i]) i = (i + 1) & mask;
  s->slots[i] = id + 1;
  return id;
}

// ---- the poll handle ----------------------------------------------------------------------------------------

static void on_handle_closed(uv_handle_t* h) {
  Sock* s = h->data;
  close(s->fd);
  s->fd = -1;
  s->poll_open = 0;
  if (s->finalized) free_sock(s);
  else free_buffers(s);
}

static void call_ready(Sock* s, int events) {
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value self, fn, arg, result;
  if (napi_get_reference_value(env, s->self, &self) == napi_ok && napi_get_reference_value(env, s->on_ready, &fn) == napi_ok &&
      napi_create_int32(env, events, &arg) == napi_ok) {
    // make_callback runs the microtask and nextTick queues afterwards, as Node does after its own callbacks.
    if (napi_make_callback(env, s->async_ctx, self, fn, 1, &arg, &result) != napi_ok) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value error;
        napi_get_and_clear_last_exception(env, &error);
        napi_fatal_exception(env, error);  // 'uncaughtException', as for a throwing dgram listener
      }
    }
  }
  napi_close_handle_scope(env, scope);
}

static void on_poll(uv_poll_t* h, int status, int events);

/** Stops watching for `events`, keeping the others. */
static void unwatch(Sock* s, int events) {
  s->events &= ~events;
  if (s->events) uv_poll_start(&s->poll, s->events, on_poll);
  else uv_poll_stop(&s->poll);
}

static void on_poll(uv_poll_t* h, int status, int events) {
  Sock* s = h->data;
  if (s->closed) return;
  // On a poll error let the syscalls tell what is wrong.
  if (status < 0) events = s->events;
  int ready = 0;
  if (events & UV_READABLE) ready |= READABLE;
  if (events & UV_WRITABLE) {
    ready |= WRITABLE;
    unwatch(s, UV_WRITABLE);  // one notice per wantWritable()
  }
  if (ready) call_ready(s, ready);
}

static napi_value watch(napi_env env, Sock* s, int events) {
  uv_loop_t* loop;
  if (!s->poll_open) {
    CHECK_NAPI(napi_get_uv_event_loop(env, &loop));
    int r = uv_poll_init(loop, &s->poll, s->fd);
    if (r != 0) {
      napi_throw_error(env, NULL, uv_strerror(r));
      return NULL;
    }
    s->poll.data = s;
    s->poll_open = 1;
    uint32_t refs;
    CHECK_NAPI(napi_reference_ref(env, s->self, &refs));
  }
  s->events |= events;
  int r = uv_poll_start(&s->poll, s->events, on_poll);
  if (r != 0) {
    napi_throw_error(env, NULL, uv_strerror(r));
    return NULL;
  }
  return undefined_value(env);
}

// ---- methods ------------------------------------------------------------------------------------------------

static napi_value sock_bind(napi_env env, napi_callback_info info) {
  OPEN_SOCKET_ARGS(3);
  char host[128] = "";
  int32_t port;
  bool reuse;
  napi_valuetype t;
  napi_typeof(env, argv[0], &t);
  if ((t == napi_string && get_string(env, argv[0], host, sizeof host) != 0) || get_int(env, argv[1], &port) != 0 ||
      napi_get_value_bool(env, argv[2], &reuse) != napi_ok) {
    napi_throw_type_error(env, NULL, "bind(address|null, port, reuseAddr)");
    return NULL;
  }
  struct sockaddr_storage sa;
  socklen_t len;
  if (parse_address(s->family, host, port, &sa, &len) != 0) {
    napi_throw_error(env, "EINVAL", "bind: bad address");
    return NULL;
  }
  int on = 1;
  if (reuse && setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) return throw_errno(env, "SO_REUSEADDR", errno);
  if (bind(s->fd, (struct sockaddr*)&sa, len) != 0) return throw_errno(env, "bind", errno);
  struct sockaddr_storage local;
  socklen_t local_len = sizeof local;
  getsockname(s->fd, (struct sockaddr*)&local, &local_len);
  napi_value result;
  napi_create_int32(env, ntohs(local.ss_family == AF_INET ? ((struct sockaddr_in*)&local)->sin_port : ((struct sockaddr_in6*)&local)->sin6_port), &result);
  return result;
}

/** setBuffers(recvBytes, sendBytes) -> [granted recv, granted send] as the kernel reports them. */
static napi_value sock_set_buffers(napi_env env, napi_callback_info info) {
  OPEN_SOCKET_ARGS(2);
  int32_t sizes[2];
  if (get_int(env, argv[0], &sizes[0]) != 0 || get_int(env, argv[1], &sizes[1]) != 0) {
    napi_throw_type_error(env, NULL, "setBuffers(recvBytes, sendBytes)");
    return NULL;
  }
  const int opts[2] = {SO_RCVBUF, SO_SNDBUF};
  napi_value result;
  CHECK_NAPI(napi_create_array_with_length(env, 2, &result));
  for (int i = 0; i < 2; i++) {
    setsockopt(s->fd, SOL_SOCKET, opts[i], &sizes[i], sizeof sizes[i]);  // capped silently: the reading tells
    int got = 0;
    socklen_t len = sizeof got;
    getsockopt(s->fd, SOL_SOCKET, opts[i], &got, &len);
    napi_value v;
    napi_create_int32(env, got, &v);
    napi_set_element(env, result, i, v);
  }
  return result;
}

/**
 * setMulticast(interface|null, ttl, loopback): the outgoing interface (IPv4 address, or "::%name" for IPv6),
 * hop limit and loopback; null and -1 leave a setting as it is.
 */
static napi_value sock_set_multicast(napi_env env, napi_callback_info info) {
  OPEN_SOCKET_ARGS(3);
  char iface[128] = "";
  int32_t ttl, on;
  napi_valuetype t;
  napi_typeof(env, argv[0], &t);
  if ((t == napi_string && get_string(env, argv[0], iface, sizeof iface) != 0) || get_int(env, argv[1], &ttl) != 0 || get_int(env, argv[2], &on) != 0) {
    napi_throw_type_error(env, NULL, "setMulticast(interface|null, ttl|-1, loopback 0|1|-1)");
    return NULL;
  }
  if (s->family == 4) {
    if (iface[0]) {
      struct in_addr a;
      if (inet_pton(AF_INET, iface, &a) != 1) {
        napi_throw_error(env, "EINVAL", "bad interface address");
        return NULL;
      }
      if (setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_IF, &a, sizeof a) != 0) return throw_errno(env, "IP_MULTICAST_IF", errno);
    }
    if (ttl >= 0 && setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) != 0) return throw_errno(env, "IP_MULTICAST_TTL", errno);
    if (on >= 0 && setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_LOOP, &on, sizeof on) != 0) return throw_errno(env, "IP_MULTICAST_LOOP", errno);
  } else {
    if (iface[0]) {
      struct sockaddr_storage sa;
      socklen_t len;
      if (parse_address(6, iface, 0, &sa, &len) != 0) {
        napi_throw_error(env, "EINVAL", "bad interface (give ::%name)");
        return NULL;
      }
      unsigned index = ((struct sockaddr_in6*)&sa)->sin6_scope_id;
      if (setsockopt(s->fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, sizeof index) != 0) return throw_errno(env, "IPV6_MULTICAST_IF", errno);
    }
    if (ttl >= 0 && setsockopt(s->fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &ttl, sizeof ttl) != 0) return throw_errno(env, "IPV6_MULTICAST_HOPS", errno);
    if (on >= 0 && setsockopt(s->fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &on, sizeof on) != 0) return throw_errno(env, "IPV6_MULTICAST_LOOP", errno);
  }
  return undefined_value(env);
}

/** addMembership(group, interface|null): IPv4 interface address, or "::%name" for IPv6. */
static napi_value sock_add_membership(napi_env env, napi_callback_info info) {
  OPEN_SOCKET_ARGS(2);
  char group[128], iface[128] = "";
  napi_valuetype t;
  napi_typeof(env, argv[1], &t);
  if (get_string(env, argv[0], group, sizeof group) != 0 || (t == napi_string && get_string(env, argv[1], iface, sizeof iface) != 0)) {
    napi_throw_type_error(env, NULL, "addMembership(group, interface|null)");
    return NULL;
  }
  struct sockaddr_storage g, i;
  socklen_t len;
  if (parse_address(s->family, group, 0, &g, &len) != 0 || parse_address(s->family, iface, 0, &i, &len) != 0) {
    napi_throw_error(env, "EINVAL", "bad group or interface address");
    return NULL;
  }
  if (s->family == 4) {
    struct ip_mreq m = {.imr_multiaddr = ((struct sockaddr_in*)&g)->sin_addr, .imr_interface = ((struct sockaddr_in*)&i)->sin_addr};
    if (setsockopt(s->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) != 0) return throw_errno(env, "IP_ADD_MEMBERSHIP", errno);
  } else {
    struct ipv6_mreq m = {.ipv6mr_multiaddr = ((struct sockaddr_in6*)&g)->sin6_addr, .ipv6mr_interface = ((struct sockaddr_in6*)&i)->sin6_scope_id};
    if (setsockopt(s->fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m) != 0) return throw_errno(env, "IPV6_JOIN_GROUP", errno);
  }
  return undefined_value(env);
}

static napi_value sock_start(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Sock* s = unwrap_open(env, info, &argc, NULL);
  return s ? watch(env, s, UV_READABLE) : NULL;
}

/** Stops watching for datagrams until start() (the kernel queues them meanwhile): lets JS take them in batches. */
static napi_value sock_pause(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Sock* s = unwrap_open(env, info, &argc, NULL);
  if (!s) return NULL;
  if (s->poll_open && (s->events & UV_READABLE)) unwatch(s, UV_READABLE);
  return undefined_value(env);
}

static napi_value sock_want_writable(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Sock* s = unwrap_open(env, info, &argc, NULL);
  return s ? watch(env, s, UV_WRITABLE) : NULL;
}

/** One recvmmsg into the ring: returns how many datagrams arrived (meta tells lengths, sources, offsets). */
static napi_value sock_read(napi_env env, napi_callback_info info) {
  napi_value result;
  Sock* s = unwrap_any(env, info);
  if (!s) return NULL;
  uint32_t count = 0;
  // Closing while a batch is being delivered ends the reading quietly. A batch of nothing but oversized
  // datagrams is read away and the next taken, in bounded rounds under a flood (the poll handle calls again).
  for (int round = 0; round < 16 && !s->closed && count == 0; round++) {
    ensure_room(s, s->batch);
    for (unsigned i = 0; i < s->batch; i++) {
      s->iovs[i].iov_base = s->ring + (size_t)i * s->slot;
      s->iovs[i].iov_len = s->slot;
      struct msghdr* h = &s->msgs[i].msg_hdr;
      h->msg_name = &s->names[i];
      h->msg_namelen = sizeof s->names[i];
      h->msg_iov = &s->iovs[i];
      h->msg_iovlen = 1;
      h->msg_control = NULL;
      h->msg_controllen = 0;
      h->msg_flags = 0;
    }
    int n = recvmmsg(s->fd, s->msgs, s->batch, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        s->recv_errors++;
        s->last_recv_errno = errno;
      }
      break;
    }
    if (n == 0) break;
    uint32_t* lengths = s->meta + 2;
    uint32_t* sources = lengths + s->batch;
    uint32_t* offsets = sources + s->batch;
    for (int i = 0; i < n; i++) {
      if (s->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
        s->truncated++;
        continue;
      }
      AddrKey k;
      key_of(&s->names[i], &k);
      lengths[count] = s->msgs[i].msg_len;
      sources[count] = intern(s, &k);
      offsets[count] = (uint32_t)((size_t)i * s->slot);
      count++;
    }
    s->datagrams += count;
  }
  s->meta[0] = count;
  s->meta[1] = s->epoch;
  CHECK_NAPI(napi_create_uint32(env, count, &result));
  return result;
}

/** send(parts[], partCounts, destIds, n): sendmmsg without copying; returns how many datagrams went out. */
static napi_value sock_send(napi_env env, napi_callback_info info) {
  OPEN_SOCKET_ARGS(4);
  uint8_t* counts;
  uint32_t* dests;
  size_t counts_len, dests_len;
  napi_typedarray_type type;
  uint32_t n, parts_len;
  if (napi_get_typedarray_info(env, argv[1], &type, &counts_len, (void**)&counts, NULL, NULL) != napi_ok || type != napi_uint8_array ||
      napi_get_typedarray_info(env, argv[2], &type, &dests_len, (void**)&dests, NULL, NULL) != napi_ok || type != napi_uint32_array ||
      napi_get_value_uint32(env, argv[3], &n) != napi_ok || napi_get_array_length(env, argv[0], &parts_len) != napi_ok ||
      n > counts_len || n > dests_len || n > s->batch) {
    napi_throw_type_error(env, NULL, "send(parts[], partCounts: Uint8Array, destIds: Uint32Array, n <= batch)");
    return NULL;
  }
  size_t iov_needed = 0;
  for (uint32_t i = 0; i < n; i++) iov_needed += counts[i];
  if (iov_needed > parts_len) {
    napi_throw_range_error(env, NULL, "send: fewer parts than partCounts add up to");
    return NULL;
  }
  if (iov_needed > s->out_iov_cap) {
    struct iovec* iovs = realloc(s->out_iovs, iov_needed * sizeof *iovs);
    if (!iovs) return throw_errno(env, "send", ENOMEM);
    s->out_iovs = iovs;
    s->out_iov_cap = iov_needed;
  }
  struct sockaddr_storage* to = s->names;  // the receive ring's address slots double as send destinations
  size_t part = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (dests[i] >= s->key_count) {
      napi_throw_range_error(env, NULL, "send: unknown destination id");
      return NULL;
    }
    socklen_t len;
    sockaddr_of(&s->keys[dests[i]], &to[i], &len);
    struct msghdr* h = &s->out_msgs[i].msg_hdr;
    memset(h, 0, sizeof *h);
    h->msg_name = &to[i];
    h->msg_namelen = len;
    h->msg_iov = &s->out_iovs[part];
    h->msg_iovlen = counts[i];
    for (unsigned p = 0; p < counts[i]; p++, part++) {
      napi_value v;
      void* data;
      size_t length;
      CHECK_NAPI(napi_get_element(env, argv[0], (uint32_t)part, &v));
      if (napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
        napi_throw_type_error(env, NULL, "send: every part must be a Uint8Array");
        return NULL;
      }
      s->out_iovs[part].iov_base = data;
      s->out_iovs[part].iov_len = length;
    }
  }
  uint32_t sent = 0;
  s->send_errno = 0;
  while (sent < n) {
    int r = sendmmsg(s->fd, s->out_msgs + sent, n - sent, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      s->send_errno = errno == EWOULDBLOCK ? EAGAIN : errno;
      break;
    }
    sent += (uint32_t)r;
  }
  napi_value result;
  napi_create_uint32(env, sent, &result);
  return result;
}

/** Why the last send() stopped short: null when the socket would block, else "CODE: message". */
static napi_value sock_send_error(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Sock* s = unwrap_open(env, info, &argc, NULL);
  if (!s) return NULL;
  napi_value result;
  if (s->send_errno == 0 || s->send_errno == EAGAIN) {
    napi_get_null(env, &result);
    return result;
  }
  char msg[160];
  snprintf(msg, sizeof msg, "send failed: %s (errno %d)", strerror(s->send_errno), s->send_errno);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &result);
  return result;
}

/** intern(address, port) -> id usable as a send destination (and equal to the id of datagrams from there). */
static napi_value sock_intern(napi_env env, napi_callback_info info) {
  OPEN_SOCKET_ARGS(2);
  char host[128];
  int32_t port;
  struct sockaddr_storage sa;
  socklen_t len;
  if (get_string(env, argv[0], host, sizeof host) != 0 || get_int(env, argv[1], &port) != 0 || port < 0 || port > 65535 ||
      parse_address(s->family, host, port, &sa, &len) != 0) {
    napi_throw_error(env, "EINVAL", "intern: bad address");
    return NULL;
  }
  AddrKey k;
  key_of(&sa, &k);
  ensure_room(s, 1);
  uint32_t id = intern(s, &k);
  if (id == UINT32_MAX) return throw_errno(env, "intern", ENOMEM);
  napi_value result;
  napi_create_uint32(env, id, &result);
  return result;
}

/** addressName(id): "a.b.c.d:port" or "[v6%scope]:port", as fleetcast formats dgram's rinfo. */
static napi_value sock_address_name(napi_env env, napi_callback_info info) {
  OPEN_SOCKET_ARGS(1);
  uint32_t id;
  if (napi_get_value_uint32(env, argv[0], &id) != napi_ok || id >= s->key_count) {
    napi_throw_range_error(env, NULL, "addressName: unknown id");
    return NULL;
  }
  const AddrKey* k = &s->keys[id];
  char host[INET6_ADDRSTRLEN], text[INET6_ADDRSTRLEN + IF_NAMESIZE + 10];
  inet_ntop(k->family, k->addr, host, sizeof host);
  if (k->family == AF_INET) {
    snprintf(text, sizeof text, "%s:%u", host, ntohs(k->port));
  } else if (k->scope) {
    char name[IF_NAMESIZE];
    if (if_indextoname(k->scope, name)) snprintf(text, sizeof text, "[%s%%%s]:%u", host, name, ntohs(k->port));
    else snprintf(text, sizeof text, "[%s%%%u]:%u", host, k->scope, ntohs(k->port));
  } else {
    snprintf(text, sizeof text, "[%s]:%u", host, ntohs(k->port));
  }
  napi_value result;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &result);
  return result;
}

/** stats() -> { datagrams, truncated, receiveErrors, lastReceiveError } */
static napi_value sock_stats(napi_env env, napi_callback_info info) {
  napi_value result, v;
  Sock* s = unwrap_any(env, info);
  if (!s) return NULL;
  napi_create_object(env, &result);
  napi_create_double(env, s->datagrams, &v);
  napi_set_named_property(env, result, "datagrams", v);
  napi_create_double(env, s->truncated, &v);
  napi_set_named_property(env, result, "truncated", v);
  napi_create_double(env, s->recv_errors, &v);
  napi_set_named_property(env, result, "receiveErrors", v);
  if (s->last_recv_errno) napi_create_string_utf8(env, strerror(s->last_recv_errno), NAPI_AUTO_LENGTH, &v);
  else napi_get_null(env, &v);
  napi_set_named_property(env, result, "lastReceiveError", v);
  return result;
}

static napi_value sock_close(napi_env env, napi_callback_info info) {
  Sock* s = unwrap_any(env, info);
  if (!s) return NULL;
  if (s->closed) return undefined_value(env);
  s->closed = 1;
  if (s->poll_open) {
    // The descriptor is closed once libuv has let go of it (on_handle_closed); the ring lives until then too.
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t*)&s->poll, on_handle_closed);
    uint32_t refs;
    napi_reference_unref(env, s->self, &refs);
  } else {
    close(s->fd);
    s->fd = -1;
    free_buffers(s);
  }
  // The callback holds the JS wrapper, which holds this object: let go, or neither is ever collected.
  napi_delete_reference(env, s->on_ready);
  s->on_ready = NULL;
  napi_async_destroy(env, s->async_ctx);
  s->async_ctx = NULL;
  return undefined_value(env);
}

static void finalize(napi_env env, void* data, void* hint) {
  (void)hint;
  Sock* s = data;
  s->finalized = 1;
  if (s->on_ready) napi_delete_reference(env, s->on_ready);
  napi_delete_reference(env, s->meta_ref);
  napi_delete_reference(env, s->ring_ref);
  napi_delete_reference(env, s->self);
  if (s->async_ctx) napi_async_destroy(env, s->async_ctx);
  if (s->poll_open) return;  // on_handle_closed frees
  if (s->fd >= 0) close(s->fd);
  free_sock(s);
}

/** new UdpSocket(family, onReady, batch, slotBytes) */
static napi_value sock_new(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], self;
  CHECK_NAPI(napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  int32_t family, batch, slot;
  napi_valuetype t;
  napi_typeof(env, argv[1], &t);
  if (argc < 4 || get_int(env, argv[0], &family) != 0 || (family != 4 && family != 6) || t != napi_function ||
      get_int(env, argv[2], &batch) != 0 || batch < 1 || batch > 1024 || get_int(env, argv[3], &slot) != 0 || slot < 64 || slot > 65536) {
    napi_throw_type_error(env, NULL, "new UdpSocket(family 4|6, onReady, batch 1..1024, slotBytes 64..65536)");
    return NULL;
  }
  Sock* s = calloc(1, sizeof *s);
  if (!s) return throw_errno(env, "UdpSocket", ENOMEM);
  s->env = env;
  s->family = family;
  s->batch = (unsigned)batch;
  s->slot = (size_t)slot;
  s->msgs = calloc((size_t)batch, sizeof *s->msgs);
  s->iovs = calloc((size_t)batch, sizeof *s->iovs);
  s->names = calloc((size_t)batch, sizeof *s->names);
  s->out_msgs = calloc((size_t)batch, sizeof *s->out_msgs);
  if (!s->msgs || !s->iovs || !s->names || !s->out_msgs || table_reset(s, 64) != 0) {
    free_sock(s);
    return throw_errno(env, "UdpSocket", ENOMEM);
  }
  s->fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->fd < 0) {
    int err = errno;
    free_sock(s);
    return throw_errno(env, "socket", err);
  }
  napi_value meta, ring, name;
  void *meta_data, *ring_data;
  if (napi_create_arraybuffer(env, (size_t)(2 + 3 * batch) * sizeof(uint32_t), &meta_data, &meta) != napi_ok ||
      napi_create_reference(env, meta, 1, &s->meta_ref) != napi_ok ||
      napi_create_arraybuffer(env, (size_t)batch * (size_t)slot, &ring_data, &ring) != napi_ok ||
      napi_create_reference(env, ring, 1, &s->ring_ref) != napi_ok || napi_create_reference(env, argv[1], 1, &s->on_ready) != napi_ok ||
      napi_create_string_utf8(env, "fleetcast:udp", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, self, name, &s->async_ctx) != napi_ok ||
      napi_set_named_property(env, self, "meta", meta) != napi_ok ||
      napi_set_named_property(env, self, "ring", ring) != napi_ok ||
      napi_wrap(env, self, s, finalize, NULL, &s->self) != napi_ok) {
    close(s->fd);
    free_sock(s);
    return NULL;
  }
  s->meta = meta_data;
  s->ring = ring_data;
  return self;
}

// ---- file write-back ----------------------------------------------------------------------------------------

// flushRange(fd, offset, length): sync_file_range(WAIT_BEFORE | WRITE | WAIT_AFTER) on the libuv pool: writes
// that range's dirty pages to the disk and waits for them, without the journal commit and the disk cache flush
// that fdatasync adds to every call (the final fsync does those once), then drops them from the page cache
// (posix_fadvise DONTNEED). Node cannot reach either (libuv has no binding). Waiting keeps a receiver's writes one
// flush deep, so receivers sharing a disk queue no more than that.
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  int64_t offset;
  int64_t length;
  int err;
} FlushRange;

static void flush_range_execute(napi_env env, void* data) {
  FlushRange* w = data;
  unsigned flags = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
  w->err = sync_file_range(w->fd, w->offset, w->length, flags) == 0 ? 0 : errno;
  // Written and clean: dropped from the page cache (advice only; its failure changes nothing). A receiver never
  // reads its image back, and an image's worth of cached copies evicts what the machine needs: 8 receivers writing
  // 2 GiB each filled the test machine's memory, and reclaiming it took the cores from the sender.
  if (w->err == 0) posix_fadvise(w->fd, w->offset, w->length, POSIX_FADV_DONTNEED);
}

static void flush_range_complete(napi_env env, napi_status status, void* data) {
  FlushRange* w = data;
  napi_value undefined, err = NULL, msg, code;
  if (status == napi_ok && w->err == 0) {
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, w->deferred, undefined);
  } else {
    char text[160];
    snprintf(text, sizeof text, "sync_file_range: %s", status == napi_ok ? strerror(w->err) : "cancelled");
    if (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg) == napi_ok &&
        napi_create_string_utf8(env, w->err == EIO ? "EIO" : w->err == ENOSPC ? "ENOSPC" : w->err == EBADF ? "EBADF" : "ESYSCALL", NAPI_AUTO_LENGTH, &code) == napi_ok)
      napi_create_error(env, code, msg, &err);
    if (!err) napi_get_undefined(env, &err);
    napi_reject_deferred(env, w->deferred, err);
  }
  napi_delete_async_work(env, w->work);
  free(w);
}

static napi_value flush_range(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], name, promise;
  int32_t fd;
  int64_t offset, length;
  CHECK_NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || get_int(env, argv[0], &fd) != 0 || fd < 0 || napi_get_value_int64(env, argv[1], &offset) != napi_ok ||
      napi_get_value_int64(env, argv[2], &length) != napi_ok || offset < 0 || length < 0) {
    napi_throw_type_error(env, NULL, "flushRange(fd, offset >= 0, length >= 0)");
    return NULL;
  }
  FlushRange* w = calloc(1, sizeof *w);
  if (!w) return throw_errno(env, "flushRange", ENOMEM);
  w->fd = fd;
  w->offset = offset;
  w->length = length;
  if (napi_create_promise(env, &w->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "fleetcast:flush-range", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, flush_range_execute, flush_range_complete, w, &w->work) != napi_ok) {
    free(w);
    return NULL;
  }
  if (napi_queue_async_work(env, w->work) != napi_ok) {
    napi_delete_async_work(env, w->work);
    free(w);
    return NULL;
  }
  return promise;
}

#define METHOD(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_default_method, NULL}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      METHOD("bind", sock_bind),
      METHOD("setBuffers", sock_set_buffers),
      METHOD("setMulticast", sock_set_multicast),
      METHOD("addMembership", sock_add_membership),
      METHOD("start", sock_start),
      METHOD("pause", sock_pause),
      METHOD("wantWritable", sock_want_writable),
      METHOD("read", sock_read),
      METHOD("send", sock_send),
      METHOD("sendError", sock_send_error),
      METHOD("intern", sock_intern),
      METHOD("addressName", sock_address_name),
      METHOD("stats", sock_stats),
      METHOD("close", sock_close),
  };
  napi_value cls;
  if (napi_define_class(env, "UdpSocket", NAPI_AUTO_LENGTH, sock_new, NULL, sizeof methods / sizeof methods[0], methods, &cls) != napi_ok) return NULL;
  napi_set_named_property(env, exports, "UdpSocket", cls);
  napi_value flush;
  if (napi_create_function(env, "flushRange", NAPI_AUTO_LENGTH, flush_range, NULL, &flush) != napi_ok) return NULL;
  napi_set_named_property(env, exports, "flushRange", flush);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
