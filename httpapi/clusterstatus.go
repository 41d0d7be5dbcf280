package httpapi

import "time"

// ClusterStatus is the JSON of GET /api/v1/cluster (the node fills it;
// the CLI and the tests decode into it).
type ClusterStatus struct {
	// Scalable says whether POST /api/v1/cluster/scale can work here (a
	// Scaler is configured; the UI offers scaling only then). The API sets
	// it.
	Scalable bool   `json:"scalable"`
	Node     string `json:"node"`   // the node that answered
	Leader   string `json:"leader"` // leader's node name
	Term     uint64 `json:"term"`
	// LogVersion is the log format the cluster writes (it moves up once
	// every server reads the newer one: see cluster.LogV2).
	LogVersion int            `json:"log_version"`
	Members    []MemberStatus `json:"members"`
	// Raft is the raft configuration: every server, member or not.
	Raft []RaftServer `json:"raft"`
	// Quorum is how the voters fare, as the answering node sees them.
	Quorum QuorumStatus `json:"quorum"`
	// Insecure says what the answering node's peer traffic lacks when it
	// runs with --insecure (absent otherwise).
	Insecure []string `json:"insecure,omitempty"`
}

// QuorumStatus is the health of the raft voters: healthy ones are alive in
// gossip and not leaving (and, seen from the leader, reached by raft's
// heartbeats).
type QuorumStatus struct {
	Voters        int `json:"voters"`
	HealthyVoters int `json:"healthy_voters"`
	Needed        int `json:"needed"` // voters that make a quorum
	// FailureTolerance is how many more voters may fail before the cluster
	// loses its quorum (0 too when it has lost it: healthy < needed).
	FailureTolerance int `json:"failure_tolerance"`
}

// RaftServer is one server of the raft configuration.
type RaftServer struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	Suffrage string `json:"suffrage"` // voter or nonvoter
	Address  string `json:"address"`
}

// MemberStatus describes one node.
type MemberStatus struct {
	Name        string    `json:"name"`
	ID          string    `json:"id"`
	State       string    `json:"state"`     // gossip: alive, suspect, dead, left
	RaftRole    string    `json:"raft_role"` // leader, follower, nonvoter, none
	Voter       bool      `json:"voter"`
	Leaving     bool      `json:"leaving,omitempty"`
	Slots       int       `json:"slots"`
	TaskQueue   int       `json:"task_queue,omitempty"` // tasks it may hold beyond Slots (pipelining)
	TasksActive int       `json:"tasks_active"`         // assigned to it: running and queued
	Version     string    `json:"version"`
	Since       time.Time `json:"since"`
	HTTP        string    `json:"http,omitempty"`
	// Disk is the member's data volume as it gossips it (absent for nodes
	// that predate it).
	Disk *DiskStatus `json:"disk,omitempty"`
}

// DiskStatus is a member's data volume: free bytes, size, what media must
// leave free (the disk and raft reserves), and whether it is below that
// (full: it takes no new task, upload or blob copy).
type DiskStatus struct {
	FreeBytes    int64 `json:"free_bytes"`
	SizeBytes    int64 `json:"size_bytes"`
	ReserveBytes int64 `json:"reserve_bytes"`
	Full         bool  `json:"full"`
}
