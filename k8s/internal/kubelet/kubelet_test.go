package kubelet

import (
	"testing"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"POD_NAME": "gosty-0", "NS": "gosty", "EMPTY": ""}
	for in, want := range map[string]string{
		"$(POD_NAME)":                   "gosty-0",
		"gosty-peers.$(NS).svc":         "gosty-peers.gosty.svc",
		"$(UNDEFINED)/x":                "$(UNDEFINED)/x",
		"$$(POD_NAME)":                  "$(POD_NAME)",
		"a$$b":                          "a$b",
		"$(EMPTY)x":                     "x",
		"cost $5 and $(NS":              "cost $5 and $(NS",
		"$":                             "$",
		"$(POD_NAME)-$(NS)-$(POD_NAME)": "gosty-0-gosty-gosty-0",
	} {
		if got := expand(in, vars); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRewrite(t *testing.T) {
	r := &podRunner{ip: "127.0.60.7",
		mounts: []mount{{path: "/var/lib/gosty", host: "/h/claim"}, {path: "/etc/gosty/keys", host: "/h/keys"}, {path: "/tmp", host: "/h/tmp"}},
		img:    Image{Files: map[string]string{"/usr/local/bin/gosty": "/build/gosty", "/tmp/shadowed": "/nope"}}}
	for in, want := range map[string]string{
		"/var/lib/gosty":              "/h/claim",
		"/var/lib/gosty/blobs":        "/h/claim/blobs",
		"/var/lib/gostyx":             "/var/lib/gostyx",
		"/etc/gosty/keys/cluster-key": "/h/keys/cluster-key",
		"/usr/local/bin/gosty":        "/build/gosty",
		"/tmp/shadowed":               "/h/tmp/shadowed", // a volume shadows the image
		"0.0.0.0":                     "127.0.60.7",
		"0.0.0.0:7946":                "127.0.60.7:7946",
		":8080":                       "127.0.60.7:8080",
		"10.0.0.1:8080":               "10.0.0.1:8080",
		"info":                        "info",
	} {
		if got := r.rewrite(in); got != want {
			t.Errorf("rewrite(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPodNetwork(t *testing.T) {
	if got := PodIP("127.0.60.3"); got != "10.244.60.3" {
		t.Errorf("PodIP = %s", got)
	}
	if got := HostIP("10.244.60.3"); got != "127.0.60.3" {
		t.Errorf("HostIP = %s", got)
	}
	if got := HostIP("10.96.0.10"); got != "10.96.0.10" {
		t.Errorf("HostIP of a non-pod address = %s", got)
	}
}
