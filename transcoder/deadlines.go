package transcoder

import (
	"math"
	"time"
)

// Every ffmpeg/ffprobe this package starts has a deadline: a fixed
// allowance plus an allowance per second of media the run handles. They are
// ceilings for a wedged or pathological run (a decoder stuck on hostile
// bytes, a filesystem that stopped answering), far above normal speed, not
// estimates: a worker keeps renewing its task's lease while its ffmpeg
// runs, so without a deadline a child that never ends would hold a slot and
// its task forever. Cancellation (job canceled, task reassigned, node
// stopping) kills a run at once through its context; a deadline kills it
// the same way (SIGKILL to its process group) and the task fails with a
// *DeadlineError, which is retried like any other failure.
const (
	versionDeadline = 30 * time.Second
	// probeDeadline bounds ffprobe on an upload: it reads headers and a few
	// seconds of packets, which takes well under a second for sane files.
	probeDeadline = 60 * time.Second
)

// deadline is base plus perSecond for every second of media.
func deadline(base time.Duration, perSecond float64, mediaSeconds float64) time.Duration {
	if math.IsNaN(mediaSeconds) || mediaSeconds < 0 {
		mediaSeconds = 0
	}
	extra := perSecond * mediaSeconds * float64(time.Second)
	if extra > float64(DefaultStepTimeout*100) { // keep the sum far from overflow
		extra = float64(DefaultStepTimeout * 100)
	}
	return base + time.Duration(extra)
}

// demuxDeadline: reading packets without decoding (keyframe scans, packet
// counts) runs at hundreds of times real time.
func demuxDeadline(mediaSeconds float64) time.Duration {
	return deadline(2*time.Minute, 0.25, mediaSeconds)
}

// copyDeadline: stream copies (split, stitch, packaging).
func copyDeadline(mediaSeconds float64) time.Duration {
	return deadline(2*time.Minute, 0.5, mediaSeconds)
}

// audioDeadline: decoding the source's audio track (which demuxes the
// whole file) and encoding AAC.
func audioDeadline(mediaSeconds float64) time.Duration {
	return deadline(2*time.Minute, 2, mediaSeconds)
}

// encodeDeadline: x264 at up to 8K and up to the slowest preset; a 6 s
// chunk gets 35 minutes.
func encodeDeadline(mediaSeconds float64) time.Duration {
	return deadline(5*time.Minute, 300, mediaSeconds)
}
