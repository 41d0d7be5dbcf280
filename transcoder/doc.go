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
//   - the child runs in its own process group, is killed (SIGKILL to the
//     group) on context cancel and on its deadline, and only the tail of its
//     stderr is kept for error messages.
//   - the child is confined (package confine, unless Config.Unconfined):
//     started through a re-exec of this binary that applies Landlock and
//     a seccomp filter before it execs the tool, it may read only the
//     files of that one run (its inputs; for a stitch the concat list and
//     the chunks it names) and the system's libraries, write only the
//     run's work or output directory, and open no socket. Each call site
//     of run names those paths. The data directory's other files (the raft
//     log, other jobs' blobs), key files and the ServiceAccount token are
//     out of reach, so a decoder exploit gets no secret and no network.
//
// Hostile media. A user's file is refused, with a *MediaError whose reason
// names the problem, before any job exists:
//   - when it is not media: empty, text of any kind (HLS/DASH manifests,
//     concat and ffconcat lists, SDP, subtitles, whatever names another path
//     or URL), archives, documents (sniffHead, on the first 4 KiB);
//   - when its demuxer is not on the allowlist (userInputArgs): hls, dash,
//     concat, image2 and other image demuxers, sdp/rtp, subtitle formats
//     and everything else that is not a self-contained container. Every
//     ffmpeg/ffprobe reading a user's file gets -protocol_whitelist file,
//     -format_whitelist and -max_streams, so even a demuxer that tried to
//     open a URL or another file could not;
//   - beyond the limits (limits.go): more than 32 streams, a side over 8192
//     or more than 8192x4320 pixels, over 24 h of video (or a container
//     declaring more), over 240 fps, an unknown size, duration or frame
//     rate; larger than Config.MaxFileBytes (the node's upload limit).
//
// Streams: only the first video stream that is not a cover picture (nor a
// still-image track, when a real video follows) and the first audio stream
// are used, and every ffmpeg maps them by index. Other streams (more audio,
// subtitles, data, attachments such as fonts) are ignored rather than
// refused: phones write data tracks and films carry subtitles, and an
// ignored stream is never mapped or decoded, so a subtitle or attachment
// cannot pull anything in; they only count against the stream limit.
//
// Deadlines (deadlines.go): every run has one, a fixed allowance plus an
// allowance per second of media (probe 60 s; a 6 s chunk encode 35 min),
// far above normal speed. A run past it is killed with its process group
// and fails with a *DeadlineError, which is retried like other failures; a
// probe past it refuses the upload.
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
//   - Thumbnails (thumbs.go, storyboard.go): no extra decoding pass. The
//     encode's graph splits its input to one more branch: shifted to the
//     job's timeline (setpts +chunk start), fps=1/interval with round=up
//     keeps, at tick k, the last frame at or before k*interval, for exactly
//     the k with k*interval in [start, start+duration) (the end of stream
//     rounds up too), so chunks partition the grid; -frame_pts names each
//     JPEG by k (its pts made k microseconds, so that ffmpeg's progress,
//     the latest time of any output, stays the chunk's). Rotation and, for HDR sources, tone mapping are applied
//     after scaling to 160 px (cheap at that size, and whatever the ladder
//     does with HDR, the JPEGs are SDR). The chunk holding the poster time
//     (a tenth of the duration) writes the poster too. One tar per chunk
//     (ThumbsFile); packaging decodes them and draws 10x10 sprite sheets in
//     Go, a grid point no chunk had a frame for (a gap in the source)
//     repeating the nearest earlier frame. Interval: 2 s, or longer so that
//     a job has at most 600 frames.
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
//   - Codecs (codecs.go): h264 (libx264, the default), hevc (libx265) and
//     av1 (libsvtav1). HEVC and AV1 default ladders are the h264 ladder at
//     60% and 50% of the bitrate. Every codec gets the same fixed GOP,
//     keyframes forced on the segment grid and no scene cuts (x265:
//     keyint/min-keyint, scenecut=0, open-gop=0; SVT-AV1: -g, scd=0 and
//     its default closed key-frame GOP), 8-bit 4:2:0. HEVC is tagged hvc1
//     (parameter sets in the sample entry), as Apple's HLS players need.
//     SVT-AV1 runs in VBR without a VBV ceiling (it takes one only in CRF
//     mode). The job's preset is an x264 name for every codec: x265 takes
//     the same names; SVT-AV1 maps them to its 0..13 scale with veryfast
//     (the default) = 10 and ultrafast = 12, placebo = 4, since below 8 it
//     is many times slower than x264 at the "same" name.
//   - CODECS: ffmpeg 5.1's DASH muxer writes a bare "hvc1" for HEVC. After
//     packaging, every video representation's RFC 6381 value is read from
//     its init segment's decoder configuration (avcC, hvcC per ISO/IEC
//     14496-15 annex E, av1C) and written into the MPD and the HLS
//     master, so both name the profile, tier and level the encoder chose.
//   - Quality (quality.go): SSIM and PSNR per rendition against the source,
//     on QualityWindows windows of QualityWindowSeconds each inside one
//     chunk of the source, the source scaled down to the rendition's size
//     (the encoder's scaler and rotation) rather than the rendition up: the
//     score is the encoder's loss at that size. Windows start half a frame
//     before a frame so both seeks select the same frames; PSNR is from the
//     mean MSE over the sampled frames, capped at MaxPSNR.
//   - Errors: problems with the user's media are *MediaError (not
//     retryable); everything else, including ctx cancel, is not.
