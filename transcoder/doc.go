// Package transcoder is everything that touches ffmpeg and ffprobe: probe a
// source, plan the rendition ladder, split the video into keyframe-aligned
// chunks, encode one chunk to every rendition in a single ffmpeg run, encode
// the audio once, and stitch and package the result as HLS, DASH and MP4.
//
// It knows nothing of the cluster or of HTTP: every function takes local file
// paths and returns plain values, so the node's worker loop decides where the
// bytes come from and where they go.
//
// Rules that hold for every ffmpeg/ffprobe this package starts:
//   - inputs are opened with the file protocol only (-protocol_whitelist file)
//     and user inputs are rejected if their container can reference other
//     files or URLs (playlists, concat lists, image sequences);
//   - the child runs in its own process group, is killed on context cancel,
//     and only the tail of its stderr is kept for error messages.
package transcoder

// Decisions recorded here (see also DESIGN.md, "Transcoding rules"):
//
//   - Rotation: Probe.Video.Rotation is the clockwise turn a player applies
//     for display, read the way ffmpeg's autorotate reads the display matrix
//     (ffprobe's matrix "rotation" negated; the legacy rotate tag as is).
//     EncodeChunk bakes it into the pixels with -noautorotate + transpose,
//     so outputs carry no rotation metadata.
//   - Chunking: cuts at source keyframes nearest to multiples of the chunk
//     target; a remainder shorter than target+MinChunkSeconds stays whole.
//     If a chunk would exceed max(MaxChunkSeconds, 2*target) the video is
//     first re-keyed (x264 ultrafast CRF 12, keyframe every target seconds).
//   - Keyframes: every chunk restarts the segment grid (chunk start +
//     k*SegmentSeconds). All renditions share chunks, so keyframes and
//     segments line up across renditions even when source keyframes are
//     irregular.
//   - Packaging: ffmpeg 5.1's DASH muxer rejects an adaptation set whose
//     representations differ in picture aspect ratio by even-size rounding,
//     so the segments carry the top rendition's display aspect (sub-percent
//     pixel aspect); progressive MP4s keep square pixels. The HLS master is
//     checked and rebuilt from the MPD if a variant or BANDWIDTH/RESOLUTION/
//     CODECS is missing; media playlists are marked VOD and lose the
//     wall-clock PROGRAM-DATE-TIME tags the muxer adds.
//   - Errors: problems with the user's media are *MediaError (not
//     retryable); everything else, including ctx cancel, is not.
