package s3test

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
)

// Proxy forwards TCP connections to target (host:port) from a port on the
// same host. The first connection whose answer reaches after bytes calls
// at there, once: at returning true drops that connection (a connection
// lost mid-object), false lets it go on (after at returned, e.g. once a
// test has seen the progress of a held transfer).
func Proxy(t testing.TB, target string, after int64, at func() (drop bool)) string {
	t.Helper()
	host, _, _ := strings.Cut(target, ":")
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var once sync.Once
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(u, c); u.Close() }()
			go func() {
				defer wg.Done()
				defer c.Close()
				defer u.Close()
				if n, _ := io.CopyN(c, u, after); n == after {
					drop := false
					once.Do(func() { drop = at() })
					if drop {
						return
					}
				}
				io.Copy(c, u)
			}()
		}
	}()
	return ln.Addr().String()
}
