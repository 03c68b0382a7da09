package zookeeper

import (
	"encoding/binary"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// Request opcodes of ZooKeeper's wire protocol that carry a path first (after the header), and
// multi, whose first operation does.
const (
	opCreate          = 1
	opMulti           = 14
	opCreate2         = 15
	opCreateContainer = 19
	opCreateTTL       = 21
)

// trackingDialer wraps every connection go-zookeeper opens so the Client can read what the
// library keeps to itself:
//
//   - inbound, the zxid of every reply header (Client.LastZxid);
//   - outbound, the moment a create or multi for a given path has joined the connection's
//     byte stream, ahead of any later request (Client.expectWrite), which the Creator needs
//     to pipeline ordered requests.
//
// Both directions are length-prefixed frames. The first frame each way is the session
// handshake (ConnectRequest/ConnectResponse) without a request or reply header; every later
// reply starts with ReplyHeader{xid int32, zxid int64, err int32} and every later request with
// RequestHeader{xid int32, type int32}.
func (c *Client) trackingDialer(dial zk.Dialer) zk.Dialer {
	return func(network, addr string, timeout time.Duration) (net.Conn, error) {
		nc, err := dial(network, addr, timeout)
		if err != nil {
			return nil, err
		}
		t := &trackedConn{
			Conn:         nc,
			c:            c,
			in:           frameScanner{handshake: true},
			out:          frameScanner{handshake: true},
			rbuf:         make([]byte, readBufferSize),
			writeTimeout: c.sessionTimeout,
		}
		t.wcond = sync.NewCond(&t.wmu)
		go t.flushLoop()
		return t, nil
	}
}

const (
	readBufferSize = 64 << 10
	// maxPendingWrite is how much a Write may queue before it waits for the socket.
	maxPendingWrite = 256 << 10
)

// trackedConn also cuts system calls, which on a small machine take CPU from the server:
// go-zookeeper reads each reply with two reads and writes each request with its own write;
// this buffers reads, and queues writes for a goroutine that sends everything queued at once.
type trackedConn struct {
	net.Conn
	c   *Client
	in  frameScanner // used by go-zookeeper's receive goroutine only
	out frameScanner // used by its send goroutine only
	// written collects paths of requests seen in one Write, signalled once queued.
	written []string

	rbuf       []byte
	rpos, rend int
	rerr       error

	writeTimeout time.Duration
	wmu          sync.Mutex
	wcond        *sync.Cond
	wbuf, wspare []byte
	werr         error
	wclosed      bool
}

func (t *trackedConn) Read(p []byte) (int, error) {
	if t.rpos == t.rend {
		if t.rerr != nil {
			return 0, t.rerr
		}
		if len(p) >= len(t.rbuf) {
			n, err := t.Conn.Read(p)
			t.in.scan(p[:n], t.inboundPrefix)
			return n, err
		}
		n, err := t.Conn.Read(t.rbuf)
		t.in.scan(t.rbuf[:n], t.inboundPrefix)
		t.rpos, t.rend, t.rerr = 0, n, err
		if n == 0 {
			t.rerr = nil
			return 0, err
		}
	}
	n := copy(p, t.rbuf[t.rpos:t.rend])
	t.rpos += n
	return n, nil
}

// Write queues p; bytes queued earlier are sent first, so requests keep their order, and a
// request whose Write returned is ahead of every later one.
func (t *trackedConn) Write(p []byte) (int, error) {
	t.out.scan(p, t.outboundPrefix)
	t.wmu.Lock()
	for len(t.wbuf) > maxPendingWrite && t.werr == nil {
		t.wcond.Wait()
	}
	if t.werr != nil {
		err := t.werr
		t.wmu.Unlock()
		t.written = t.written[:0]
		return 0, err
	}
	t.wbuf = append(t.wbuf, p...)
	t.wcond.Broadcast()
	t.wmu.Unlock()
	for _, path := range t.written {
		t.c.signalWrite(path)
	}
	t.written = t.written[:0]
	return len(p), nil
}

func (t *trackedConn) flushLoop() {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	for {
		for len(t.wbuf) == 0 && !t.wclosed {
			t.wcond.Wait()
		}
		if t.wclosed {
			return
		}
		// Let the goroutines with requests ready queue them too, so one write carries many.
		for range 3 {
			n := len(t.wbuf)
			t.wmu.Unlock()
			runtime.Gosched()
			t.wmu.Lock()
			if len(t.wbuf) == n {
				break
			}
		}
		buf := t.wbuf
		t.wbuf = t.wspare[:0]
		t.wmu.Unlock()
		_ = t.Conn.SetWriteDeadline(time.Now().Add(t.writeTimeout))
		_, err := t.Conn.Write(buf)
		t.wmu.Lock()
		t.wspare = buf
		if cap(buf) > 2*maxPendingWrite {
			t.wspare = nil // let a buffer grown by a large request go
		}
		if err != nil {
			t.werr = err
			t.wclosed = true
			t.Conn.Close() // the receive side fails too, and go-zookeeper reconnects
			t.wcond.Broadcast()
			return
		}
		t.wcond.Broadcast()
	}
}

// SetWriteDeadline is ignored: writes happen later, each under writeTimeout.
func (t *trackedConn) SetWriteDeadline(time.Time) error { return nil }

func (t *trackedConn) SetDeadline(d time.Time) error { return t.Conn.SetReadDeadline(d) }

func (t *trackedConn) Close() error {
	t.wmu.Lock()
	t.wclosed = true
	if t.werr == nil {
		t.werr = net.ErrClosed
	}
	t.wcond.Broadcast()
	t.wmu.Unlock()
	return t.Conn.Close()
}

// inboundPrefix records the reply header's zxid; notifications (xid -1) carry -1.
func (t *trackedConn) inboundPrefix(pre []byte) int {
	if len(pre) < 12 {
		return 12
	}
	t.c.observeZxid(int64(binary.BigEndian.Uint64(pre[4:12])))
	return 0
}

// outboundPrefix asks for as many bytes as it takes to read the path of a create, or of the
// first operation of a multi.
func (t *trackedConn) outboundPrefix(pre []byte) int {
	if len(pre) == 0 && t.c.watching.Load() == 0 {
		return 0
	}
	if len(pre) < 8 {
		return 8
	}
	var at int
	switch binary.BigEndian.Uint32(pre[4:8]) {
	case opCreate, opCreate2, opCreateContainer, opCreateTTL:
		at = 8
	case opMulti:
		// multi header {type int32, done bool, err int32} of the first operation
		at = 8 + 9
		if len(pre) < at {
			return at
		}
		if binary.BigEndian.Uint32(pre[8:12]) != opCreate {
			return 0
		}
	default:
		return 0
	}
	if len(pre) < at+4 {
		return at + 4
	}
	n := int(int32(binary.BigEndian.Uint32(pre[at : at+4])))
	if n < 0 {
		return 0
	}
	if len(pre) < at+4+n {
		return at + 4 + n
	}
	t.written = append(t.written, string(pre[at+4:at+4+n]))
	return 0
}

func (c *Client) observeZxid(z int64) {
	for {
		cur := c.zxid.Load()
		if z <= cur || c.zxid.CompareAndSwap(cur, z) {
			return
		}
	}
}

// expectWrite returns a channel closed once a create (or a multi whose first operation is a
// create) of path has been written to a connection. The caller must call forgetWrite when done
// waiting. Requests written to one connection reach the server, and are executed, in order.
func (c *Client) expectWrite(path string) <-chan struct{} {
	ch := make(chan struct{})
	c.writesMu.Lock()
	if _, dup := c.writes[path]; !dup {
		c.watching.Add(1)
	}
	c.writes[path] = ch
	c.writesMu.Unlock()
	return ch
}

func (c *Client) forgetWrite(path string) {
	c.writesMu.Lock()
	if _, ok := c.writes[path]; ok {
		delete(c.writes, path)
		c.watching.Add(-1)
	}
	c.writesMu.Unlock()
}

func (c *Client) signalWrite(path string) {
	c.writesMu.Lock()
	if ch, ok := c.writes[path]; ok {
		close(ch)
		delete(c.writes, path)
		c.watching.Add(-1)
	}
	c.writesMu.Unlock()
}

// frameScanner follows a stream of length-prefixed frames whatever the read or write sizes,
// and hands the start of each frame (after the handshake frame) to a prefix function, which
// answers how many bytes of the frame it wants in total (0: no more).
type frameScanner struct {
	handshake bool // still in the first frame
	lenBuf    [4]byte
	lenN      int
	left      int  // bytes of the current frame not yet seen
	inFrame   bool // lenBuf complete, in the body
	pre       []byte
	want      int
}

func (s *frameScanner) scan(b []byte, prefix func([]byte) int) {
	for len(b) > 0 {
		if !s.inFrame {
			k := copy(s.lenBuf[s.lenN:], b)
			s.lenN += k
			b = b[k:]
			if s.lenN < 4 {
				return
			}
			s.lenN = 0
			s.left = int(int32(binary.BigEndian.Uint32(s.lenBuf[:])))
			s.inFrame = s.left > 0
			s.pre = s.pre[:0]
			s.want = 0
			if !s.handshake {
				s.want = prefix(s.pre)
			}
			if !s.inFrame {
				s.handshake = false
			}
			continue
		}
		k := min(len(b), s.left)
		chunk := b[:k]
		for s.want > len(s.pre) && len(chunk) > 0 {
			take := min(len(chunk), s.want-len(s.pre))
			s.pre = append(s.pre, chunk[:take]...)
			chunk = chunk[take:]
			if len(s.pre) >= s.want {
				s.want = prefix(s.pre)
			}
		}
		if s.want > len(s.pre)+s.left-k {
			s.want = 0 // the frame is shorter than the prefix claims; ignore the rest
		}
		b = b[k:]
		s.left -= k
		if s.left == 0 {
			s.inFrame = false
			s.handshake = false
			s.want = 0
		}
	}
}
