package node

import (
	"net"
	"testing"
)

func TestPublicAddr(t *testing.T) {
	cases := []struct{ listen, adv, want string }{
		{"[::]:8080", "10.1.2.3", "10.1.2.3:8080"},
		{"0.0.0.0:8080", "10.1.2.3", "10.1.2.3:8080"},
		{"127.0.0.5:8080", "10.1.2.3", "127.0.0.5:8080"},
	}
	for _, c := range cases {
		addr, err := net.ResolveTCPAddr("tcp", c.listen)
		if err != nil {
			t.Fatal(err)
		}
		if got := publicAddr(addr, c.adv); got != c.want {
			t.Errorf("publicAddr(%s, %s) = %s, want %s", c.listen, c.adv, got, c.want)
		}
	}
}
