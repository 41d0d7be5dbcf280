package node

import (
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gosty/gosty/cluster"
)

// clusterCollector reads raft's and gossip's state at scrape time: this
// node's raft role, term, indexes and last contact with the leader, the
// voter count, the healthy voters and the failures the quorum can take,
// and members by gossip state.
type clusterCollector struct{ n *Node }

var (
	raftStateDesc   = prometheus.NewDesc("gosty_raft_state", "1 for this node's current raft state.", []string{"state"}, nil)
	raftTermDesc    = prometheus.NewDesc("gosty_raft_term", "Current raft term.", nil, nil)
	raftCommitDesc  = prometheus.NewDesc("gosty_raft_commit_index", "Highest log index known committed.", nil, nil)
	raftAppliedDesc = prometheus.NewDesc("gosty_raft_applied_index", "Highest log index applied to the FSM.", nil, nil)
	raftContactDesc = prometheus.NewDesc("gosty_raft_last_contact_seconds",
		"Seconds since this follower last heard from the leader (0 on the leader).", nil, nil)
	raftVotersDesc  = prometheus.NewDesc("gosty_raft_voters", "Voters in the raft configuration.", nil, nil)
	raftServersDesc = prometheus.NewDesc("gosty_raft_servers", "Servers (voters and non-voters) in the raft configuration.", nil, nil)
	membersDesc     = prometheus.NewDesc("gosty_members", "Cluster members by gossip state, as this node sees them.", []string{"state"}, nil)
	healthyDesc     = prometheus.NewDesc("gosty_raft_healthy_voters",
		"Voters alive in gossip and not leaving (on the leader, also reached by raft's heartbeats), as this node sees them.", nil, nil)
	toleranceDesc = prometheus.NewDesc("gosty_raft_failure_tolerance",
		"How many more voters may fail before the cluster loses its quorum (0 also when it has lost it), as this node sees them.", nil, nil)
)

var raftStates = []raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown}

var memberStates = []cluster.MemberState{cluster.StateAlive, cluster.StateSuspect, cluster.StateDead, cluster.StateLeft}

func (c clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{raftStateDesc, raftTermDesc, raftCommitDesc, raftAppliedDesc,
		raftContactDesc, raftVotersDesc, raftServersDesc, membersDesc, healthyDesc, toleranceDesc} {
		ch <- d
	}
}

func (c clusterCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.n.store.Metrics()
	state := r.State
	for _, s := range raftStates {
		v := 0.0
		if s == state {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(raftStateDesc, prometheus.GaugeValue, v, strings.ToLower(s.String()))
	}
	ch <- prometheus.MustNewConstMetric(raftTermDesc, prometheus.GaugeValue, float64(r.Term))
	ch <- prometheus.MustNewConstMetric(raftCommitDesc, prometheus.GaugeValue, float64(r.CommitIndex))
	ch <- prometheus.MustNewConstMetric(raftAppliedDesc, prometheus.GaugeValue, float64(r.AppliedIndex))
	contact := 0.0
	if !r.LastContact.IsZero() {
		contact = time.Since(r.LastContact).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(raftContactDesc, prometheus.GaugeValue, contact)
	if servers, err := c.n.store.Configuration(); err == nil {
		voters := 0
		for _, s := range servers {
			if s.Suffrage == raft.Voter {
				voters++
			}
		}
		ch <- prometheus.MustNewConstMetric(raftVotersDesc, prometheus.GaugeValue, float64(voters))
		ch <- prometheus.MustNewConstMetric(raftServersDesc, prometheus.GaugeValue, float64(len(servers)))
	}
	if q, err := c.n.promote.Health(); err == nil {
		ch <- prometheus.MustNewConstMetric(healthyDesc, prometheus.GaugeValue, float64(q.Healthy))
		ch <- prometheus.MustNewConstMetric(toleranceDesc, prometheus.GaugeValue, float64(q.FailureTolerance))
	}
	counts := map[cluster.MemberState]int{}
	for _, m := range c.n.members.Members() {
		counts[m.State]++
	}
	for _, s := range memberStates {
		ch <- prometheus.MustNewConstMetric(membersDesc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
}
