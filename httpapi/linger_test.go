package httpapi

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A client that is still sending an over-size body when the 413 is written
// (busy, or on a slow link) must still read the 413. Closing the
// connection with its bytes unread resets it, and the reset drops the
// answer in the client's receive queue: the server reads on (bounded)
// before it closes. The client here pauses longer than net/http's own
// half-second grace before it ends its body; without the linger its read
// fails with "connection reset by peer".
func TestOverSizeAnswerReachesASlowSender(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxUploadBytes = 1024 })
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	chunk := strings.Repeat("x", 64<<10)
	fmt.Fprintf(conn, "POST /api/v1/jobs?filename=a.mp4 HTTP/1.1\r\nHost: gosty\r\nTransfer-Encoding: chunked\r\n"+
		"Content-Type: application/octet-stream\r\n\r\n")
	// 1 MiB, beyond the 256 KiB net/http reads after a handler by itself.
	for range 16 {
		if _, err := fmt.Fprintf(conn, "%x\r\n%s\r\n", len(chunk), chunk); err != nil {
			t.Fatalf("the server closed while the body was still coming: %v", err)
		}
	}
	time.Sleep(time.Second) // the slow sender, not synchronisation
	if _, err := fmt.Fprintf(conn, "%x\r\n%s\r\n0\r\n\r\n", len(chunk), chunk); err != nil {
		t.Fatalf("the server closed while the body was still coming: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the answer was lost: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
}
