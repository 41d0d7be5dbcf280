package node

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/node/disk"
	"github.com/gosty/gosty/transcoder"
)

// metrics are the node's own gosty_ series (names per DESIGN.md). Labels
// are bounded: states, codecs, never ids.
type metrics struct {
	reg           *prometheus.Registry
	chunkSeconds  *prometheus.HistogramVec
	encodeSpeed   *prometheus.HistogramVec
	tasksInFlight prometheus.Gauge
	slots         prometheus.Gauge
	uploadBytes   prometheus.Counter
	jobSeconds    *prometheus.HistogramVec
	jobsFinished  *prometheus.CounterVec
	renditionSSIM *prometheus.HistogramVec
	renditionPSNR *prometheus.HistogramVec
	freedBytes    prometheus.Counter
	planSeconds   prometheus.Histogram
	damaged       prometheus.Counter
	ackSeconds    *prometheus.HistogramVec
}

func newMetrics(fsm *cluster.FSM, cfg Config, space *disk.Space) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg: reg,
		jobSeconds: codecHistogram("gosty_job_duration_seconds",
			"Time from submission to done, for jobs that finished while this node was up (every node reports the same jobs).",
			prometheus.ExponentialBuckets(1, 2, 15)),
		jobsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gosty_jobs_finished_total",
			Help: "Jobs that reached a final state while this node was up (every node counts the same jobs).",
		}, []string{"state"}),
		chunkSeconds: codecHistogram("gosty_chunk_encode_seconds",
			"Wall time to encode one chunk to every rendition.",
			prometheus.ExponentialBuckets(0.25, 2, 12)),
		encodeSpeed: codecHistogram("gosty_encode_speed_ratio",
			"Media seconds encoded per wall second for one chunk (1 = real time).",
			[]float64{0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32}),
		renditionSSIM: codecHistogram("gosty_rendition_ssim",
			"Sampled SSIM against the source of every rendition of jobs that finished while this node was up (every node reports the same jobs).",
			[]float64{0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995}),
		renditionPSNR: codecHistogram("gosty_rendition_psnr_db",
			"Sampled PSNR (dB) against the source of every rendition of jobs that finished while this node was up (every node reports the same jobs).",
			[]float64{20, 25, 30, 33, 36, 38, 40, 42, 45, 50, 60}),
		tasksInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gosty_tasks_in_flight", Help: "Tasks this node is running.",
		}),
		slots: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gosty_task_slots", Help: "Tasks this node may run at once.",
		}),
		freedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gosty_retention_freed_bytes_total",
			Help: "Bytes released by jobs whose TTL ran out (each blob once, however many copies; every node counts the same jobs).",
		}),
		uploadBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gosty_upload_bytes_total", Help: "Bytes received in uploads.",
		}),
		damaged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gosty_blobs_damaged_total",
			Help: "Local blob copies found damaged (on reading them or by the scrub) and deleted; replication makes them again from a good copy.",
		}),
		ackSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gosty_upload_ack_seconds",
			Help: "Time an upload waits, after its last byte is stored here, for the other nodes to hold their copies (--ack-replicas). " +
				"outcome: ok; fewer (accepted with fewer copies than the replication factor: fewer nodes were alive); failed (answered 503).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"outcome"}),
		planSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gosty_scheduler_plan_seconds",
			Help:    "Time the leader's scheduler takes to plan one log entry's reclaims, rewinds and assignments (under the state's read lock).",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
		}),
	}
	m.slots.Set(float64(cfg.Slots))
	for _, o := range []string{ackOK, ackFewer, ackFailed} {
		m.ackSeconds.WithLabelValues(o)
	}
	for _, s := range []cluster.JobState{cluster.JobDone, cluster.JobFailed, cluster.JobCanceled} {
		m.jobsFinished.WithLabelValues(string(s))
	}
	fsm.OnJobFinished(m.observeJob)
	fsm.OnJobExpired(func(j cluster.Job) { m.freedBytes.Add(float64(j.FreedBytes)) })
	reg.MustRegister(m.chunkSeconds, m.encodeSpeed, m.tasksInFlight, m.slots, m.uploadBytes,
		m.jobSeconds, m.jobsFinished, m.renditionSSIM, m.renditionPSNR, m.freedBytes, m.planSeconds, m.damaged, m.ackSeconds,
		volumeCollector{space: space},
		cluster.InternalMetrics(),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// codecHistogram is a histogram by codec, the one label of the node's
// encode, job and quality series.
func codecHistogram(name, help string, buckets []float64) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, []string{"codec"})
}

func (m *metrics) observeJob(j cluster.Job) {
	m.jobsFinished.WithLabelValues(string(j.State)).Inc()
	if j.State == cluster.JobDone {
		m.jobSeconds.WithLabelValues(codecLabel(j.Options.Codec)).Observe(j.FinishedAt.Sub(j.CreatedAt).Seconds())
		if len(j.Quality) == len(j.Renditions) {
			for i, q := range j.Quality {
				codec := codecLabel(j.Renditions[i].Codec)
				m.renditionSSIM.WithLabelValues(codec).Observe(q.SSIM)
				m.renditionPSNR.WithLabelValues(codec).Observe(q.PSNR)
			}
		}
	}
}

// codecLabel bounds the codec label to the known codecs ("other" for
// anything an old log might hold).
func codecLabel(codec string) string {
	c, err := transcoder.NormalizeCodec(codec)
	if err != nil {
		return "other"
	}
	return c
}

func (m *metrics) observeEncode(codec string, elapsed time.Duration, media float64) {
	codec = codecLabel(codec)
	m.chunkSeconds.WithLabelValues(codec).Observe(elapsed.Seconds())
	if s := elapsed.Seconds(); s > 0 && media > 0 {
		m.encodeSpeed.WithLabelValues(codec).Observe(media / s)
	}
}

// stateCollector reads job and queue gauges from the FSM at scrape time, so
// they can never drift from the log; its cost follows the active work (the
// job counts are kept by the state, the tasks are those of running jobs).
// The replication gauge is the replicator's last count, the stored bytes
// the blob store's own total.
type stateCollector struct {
	fsm   *cluster.FSM
	under func() int   // durable blobs short of copies
	held  func() int64 // bytes stored on this node
}

var (
	jobsDesc  = prometheus.NewDesc("gosty_jobs", "Jobs by state.", []string{"state"}, nil)
	queueDesc = prometheus.NewDesc("gosty_queue_depth", "Tasks waiting for a node.", nil, nil)
	underDesc = prometheus.NewDesc("gosty_blobs_under_replicated",
		"Sources and published outputs (a manifest and its files count once) with fewer copies on alive nodes than the replication factor.", nil, nil)
	heldDesc     = prometheus.NewDesc("gosty_blob_store_bytes", "Bytes of blobs stored on this node.", nil, nil)
	commandsDesc = prometheus.NewDesc("gosty_log_commands_applied_total",
		"Commands this node applied from the job log since it started (a batch entry counts each of its commands); against gosty_raft_applied_index it shows how many commands share an entry.", nil, nil)
	logVersionDesc = prometheus.NewDesc("gosty_log_version", "The job log format version the cluster writes.", nil, nil)
)

var allStates = []cluster.JobState{cluster.JobIngesting, cluster.JobQueued, cluster.JobSplitting, cluster.JobTranscoding,
	cluster.JobPackaging, cluster.JobDone, cluster.JobFailed, cluster.JobCanceled}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jobsDesc
	ch <- queueDesc
	ch <- underDesc
	ch <- heldDesc
	ch <- commandsDesc
	ch <- logVersionDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	var counts map[cluster.JobState]int
	pending := 0
	c.fsm.Read(func(st *cluster.State) {
		counts = st.Counts()
		st.Tasks(func(t *cluster.Task) bool {
			if t.State == cluster.TaskPending {
				pending++
			}
			return true
		})
	})
	for _, s := range allStates {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
	ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(pending))
	ch <- prometheus.MustNewConstMetric(underDesc, prometheus.GaugeValue, float64(c.under()))
	ch <- prometheus.MustNewConstMetric(heldDesc, prometheus.GaugeValue, float64(c.held()))
	ch <- prometheus.MustNewConstMetric(commandsDesc, prometheus.CounterValue, float64(c.fsm.CommandsApplied()))
	ch <- prometheus.MustNewConstMetric(logVersionDesc, prometheus.GaugeValue, float64(c.fsm.LogVersion()))
}

// volumeCollector reports the data volume's size and free space at scrape
// time, and what media must leave free: a full volume is the most common
// way a transcoding node stops.
type volumeCollector struct{ space *disk.Space }

var (
	volFreeDesc    = prometheus.NewDesc("gosty_data_volume_free_bytes", "Free bytes on the data directory's volume (available to this process).", nil, nil)
	volSizeDesc    = prometheus.NewDesc("gosty_data_volume_size_bytes", "Size of the data directory's volume.", nil, nil)
	volReserveDesc = prometheus.NewDesc("gosty_data_volume_reserve_bytes",
		"Free bytes media must leave on the data volume (--disk-reserve plus --raft-reserve): below it the node refuses uploads and blob copies (507) and gets no new task.", nil, nil)
)

func (c volumeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- volFreeDesc
	ch <- volSizeDesc
	ch <- volReserveDesc
}

func (c volumeCollector) Collect(ch chan<- prometheus.Metric) {
	u, err := c.space.Usage()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(volFreeDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(volFreeDesc, prometheus.GaugeValue, float64(u.Avail))
	ch <- prometheus.MustNewConstMetric(volSizeDesc, prometheus.GaugeValue, float64(u.Size))
	ch <- prometheus.MustNewConstMetric(volReserveDesc, prometheus.GaugeValue, float64(c.space.Floor()))
}
