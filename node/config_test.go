package node

import (
	"net"
	"strings"
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

// TestSafeDefaults: a lone node listens on loopback; one that joins peers
// on every interface; a node other machines can reach refuses to start
// without both keys (naming the missing flags and --insecure) unless
// Insecure is set, and lists what is open when it is.
func TestSafeDefaults(t *testing.T) {
	base := func(mod func(*Config)) Config {
		c := DefaultConfig()
		c.Name, c.DataDir = "n1", t.TempDir()
		mod(&c)
		return c
	}
	join := func(c *Config) { c.Join = []string{"10.0.0.2"} }
	keys := func(c *Config) { c.ClusterKeyFile, c.GossipKeyFile = "/k/cluster", "/k/gossip" }
	cases := []struct {
		name     string
		mod      func(*Config)
		bind     string
		exposed  bool
		refusal  []string // substrings of the error; nil = valid
		insecure int      // entries insecurity lists (keys as configured)
	}{
		{"lone", func(c *Config) {}, "127.0.0.1", false, nil, 0},
		{"lone on another loopback", func(c *Config) { c.BindAddr = "127.0.110.7" }, "127.0.110.7", false, nil, 0},
		{"lone on ::1", func(c *Config) { c.BindAddr = "::1" }, "::1", false, nil, 0},
		{"lone on every interface", func(c *Config) { c.BindAddr = "0.0.0.0" }, "0.0.0.0", true,
			[]string{"--bind-addr", "--cluster-key-file and --gossip-key-file", "--insecure"}, 2},
		{"join without keys", join, "0.0.0.0", true,
			[]string{"joins peers (--join)", "--cluster-key-file and --gossip-key-file", "--insecure"}, 2},
		{"join with a cluster key only", func(c *Config) { join(c); c.ClusterKeyFile = "/k/cluster" }, "0.0.0.0", true,
			[]string{"give --gossip-key-file (", "--insecure"}, 1},
		{"join with a gossip key only", func(c *Config) { join(c); c.GossipKeyFile = "/k/gossip" }, "0.0.0.0", true,
			[]string{"give --cluster-key-file (", "--insecure"}, 1},
		{"join on loopback without keys", func(c *Config) { join(c); c.BindAddr = "127.0.0.3" }, "127.0.0.3", true,
			[]string{"--cluster-key-file and --gossip-key-file"}, 2},
		{"join with keys", func(c *Config) { join(c); keys(c) }, "0.0.0.0", true, nil, 0},
		{"join with both port key files and a gossip key", func(c *Config) {
			join(c)
			c.GossipKeyFile, c.RaftKeyFile, c.InternalKeyFile = "/k/gossip", "/k/raft", "/k/internal"
		}, "0.0.0.0", true, nil, 0},
		{"join with the raft key file only", func(c *Config) {
			join(c)
			c.GossipKeyFile, c.RaftKeyFile = "/k/gossip", "/k/raft"
		}, "0.0.0.0", true, []string{"--cluster-key-file"}, 1},
		{"join with certificates and a gossip key", func(c *Config) {
			join(c)
			c.GossipKeyFile = "/k/gossip"
			c.TLSCertFile, c.TLSKeyFile, c.TLSCAFile = "/t/tls.crt", "/t/tls.key", "/t/ca.crt"
		}, "0.0.0.0", true, nil, 0},
		{"join, insecure", func(c *Config) { join(c); c.Insecure = true }, "0.0.0.0", true, nil, 2},
		{"join with keys, insecure", func(c *Config) { join(c); keys(c); c.Insecure = true }, "0.0.0.0", true, nil, 0},
		{"lone, insecure", func(c *Config) { c.Insecure = true }, "127.0.0.1", false, nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base(tc.mod)
			if got := c.BindIP(); got != tc.bind {
				t.Errorf("bind IP %s, want %s", got, tc.bind)
			}
			if got := c.Exposed(); got != tc.exposed {
				t.Errorf("exposed %v, want %v", got, tc.exposed)
			}
			err := c.Validate()
			if tc.refusal == nil && err != nil {
				t.Errorf("refused: %v", err)
			}
			if tc.refusal != nil {
				if err == nil {
					t.Fatal("valid, want a refusal")
				}
				for _, want := range tc.refusal {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("the refusal %q lacks %q", err, want)
					}
				}
			}
			peersAuth := c.ClusterKeyFile != "" || c.TLSCertFile != "" || c.RaftKeyFile != "" && c.InternalKeyFile != ""
			if got := insecurity(c, peersAuth, c.GossipKeyFile != ""); len(got) != tc.insecure {
				t.Errorf("insecurity %q, want %d entries", got, tc.insecure)
			}
		})
	}
	// A lone node dials itself on loopback; one that joins, on its bind
	// address if specific.
	if c := base(func(*Config) {}); c.advertiseIP() != "127.0.0.1" {
		t.Errorf("a lone node advertises %s", c.advertiseIP())
	}
	if c := base(func(c *Config) { join(c); keys(c); c.BindAddr = "10.1.2.3" }); c.advertiseIP() != "10.1.2.3" {
		t.Errorf("a node bound to 10.1.2.3 advertises %s", c.advertiseIP())
	}
	if c := base(func(c *Config) { c.BindAddr = "nonsense" }); c.Validate() == nil || !strings.Contains(c.Validate().Error(), "not an IP") {
		t.Errorf("bind addr nonsense: %v", c.Validate())
	}
	// Operator certificates: all three files or none.
	for _, mod := range []func(*Config){
		func(c *Config) { c.TLSCertFile = "/t/tls.crt" },
		func(c *Config) { c.TLSCertFile, c.TLSKeyFile = "/t/tls.crt", "/t/tls.key" },
		func(c *Config) { c.TLSCAFile = "/t/ca.crt" },
	} {
		c := base(mod)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--tls-cert, --tls-key and --tls-ca go together") {
			t.Errorf("a partial --tls-* set: %v", err)
		}
	}
	c := base(func(c *Config) { c.TLSCertFile, c.TLSKeyFile, c.TLSCAFile = "/t/tls.crt", "/t/tls.key", "/t/ca.crt" })
	if err := c.Validate(); err != nil {
		t.Errorf("all three --tls-* refused: %v", err)
	}
}
