package node

import (
	"errors"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/httpapi"
)

// An upload's node that is not alive: unknown (404), gone (410) or worth
// waiting for (503), from gossip, the log and how long it has been away.
func TestOwnerAbsent(t *testing.T) {
	now := time.Now()
	started := now.Add(-time.Hour)
	const timeout = 5 * time.Minute
	member := func(s cluster.MemberState, away time.Duration) cluster.Member {
		return cluster.Member{Name: "gosty-1", State: s, Since: now.Add(-away)}
	}
	for _, tc := range []struct {
		name            string
		m               cluster.Member
		inGossip, inLog bool
		joined          bool
		started         time.Time
		timeout         time.Duration
		want            error // nil: neither unknown nor gone (503)
	}{
		{"never heard of", cluster.Member{}, false, false, true, started, timeout, httpapi.ErrOwnerUnknown},
		{"never heard of, before joining", cluster.Member{}, false, false, false, started, timeout, nil},
		{"dead a moment", member(cluster.StateDead, time.Second), true, true, true, started, timeout, nil},
		{"suspect a moment, not in the log yet", member(cluster.StateSuspect, time.Second), true, false, true, started, timeout, nil},
		{"left a moment (a rolling restart)", member(cluster.StateLeft, 10*time.Second), true, true, true, started, timeout, nil},
		{"dead past the timeout", member(cluster.StateDead, timeout), true, true, true, started, timeout, httpapi.ErrOwnerGone},
		{"left past the timeout", member(cluster.StateLeft, 2*timeout), true, true, true, started, timeout, httpapi.ErrOwnerGone},
		{"dead long, no timeout", member(cluster.StateDead, 100*timeout), true, true, true, started, 0, nil},
		{"in the log only, this node up long", cluster.Member{}, false, true, true, started, timeout, httpapi.ErrOwnerGone},
		{"in the log only, this node just started", cluster.Member{}, false, true, true, now.Add(-time.Second), timeout, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ownerAbsent(tc.m, tc.inGossip, tc.inLog, tc.joined, tc.started, now, tc.timeout)
			if err == nil {
				t.Fatal("no error")
			}
			unknown, gone := errors.Is(err, httpapi.ErrOwnerUnknown), errors.Is(err, httpapi.ErrOwnerGone)
			switch tc.want {
			case nil:
				if unknown || gone {
					t.Fatalf("%v: want a node to wait for", err)
				}
			default:
				if !errors.Is(err, tc.want) || (unknown && gone) {
					t.Fatalf("%v: want %v", err, tc.want)
				}
			}
		})
	}
}
