package transcoder

// Limits on what a source may be. Beyond them a job would be unreasonably
// costly (or the probe values are garbage), so Probe refuses the file with
// a *MediaError before any work is queued. The upload size is bounded
// before this, by the HTTP API (--max-upload-bytes, 413) and again by
// Config.MaxFileBytes here.
const (
	maxDuration  = 24 * 3600.0 // seconds of video
	maxDimension = 8192        // pixels on either side, after rotation
	maxPixels    = 8192 * 4320 // pixels per picture (8K DCI)
	maxFrameRate = 240.0       // average frames per second
	// maxStreams bounds every stream of the file, used or not: real files
	// carry a video, a few audio tracks, subtitles and perhaps a data track
	// or fonts; thousands of streams only cost memory and time in every
	// demuxer pass. ffprobe and ffmpeg get -max_streams one above it.
	maxStreams = 32
)
