package node

import (
	"strings"
	"testing"
)

// TestAckNeed: a set --ack-replicas is never lowered; the default is the
// replication factor capped by the live nodes, and a lone node needs only
// itself.
func TestAckNeed(t *testing.T) {
	for _, tc := range []struct{ ack, replicas, live, want int }{
		{0, 2, 3, 2},
		{0, 3, 3, 3},
		{0, 3, 2, 2},
		{0, 3, 1, 1},
		{0, 2, 0, 1},
		{2, 3, 1, 2},
		{2, 3, 5, 2},
		{1, 3, 3, 1},
	} {
		if got := ackNeed(tc.ack, tc.replicas, tc.live); got != tc.want {
			t.Errorf("ackNeed(ack %d, replicas %d, live %d) = %d, want %d", tc.ack, tc.replicas, tc.live, got, tc.want)
		}
	}
}

func TestAckOutcome(t *testing.T) {
	for _, tc := range []struct {
		held, need, ack, replicas int
		want                      string
	}{
		{2, 2, 0, 2, ackOK},
		{1, 2, 0, 2, ackFailed},
		{1, 1, 0, 2, ackFewer}, // a lone node, or the others dead
		{2, 2, 2, 3, ackOK},    // what --ack-replicas asks, short of the factor
		{1, 2, 2, 3, ackFailed},
		{3, 3, 0, 3, ackOK},
		{3, 2, 0, 3, ackOK}, // more than needed
	} {
		if got := ackOutcome(tc.held, tc.need, tc.ack, tc.replicas); got != tc.want {
			t.Errorf("ackOutcome(%d held, %d needed, ack %d, replicas %d) = %s, want %s",
				tc.held, tc.need, tc.ack, tc.replicas, got, tc.want)
		}
	}
}

func TestAckReplicasValidation(t *testing.T) {
	for _, tc := range []struct {
		ack, replicas int
		ok            bool
	}{
		{0, 2, true}, {1, 2, true}, {2, 2, true}, {3, 2, false}, {-1, 2, false}, {3, 3, true},
	} {
		c := DefaultConfig()
		c.AckReplicas, c.Replicas = tc.ack, tc.replicas
		err := c.Validate()
		if tc.ok != (err == nil) || (err != nil && !strings.Contains(err.Error(), "ack replicas")) {
			t.Errorf("ack %d of %d replicas: %v", tc.ack, tc.replicas, err)
		}
	}
}
