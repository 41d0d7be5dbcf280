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
// still-image track, when a real video follows) and the first
// MaxAudioTracks (8) audio streams are used, and every ffmpeg maps them by
// index; of the audio streams, the job's choice (Options.Audio: all, the
// first, or a list of ordinals; Probe.SelectAudio) is encoded. Other
// streams (audio beyond the cap, subtitles, data, attachments such as
// fonts) are ignored rather than refused: phones write data tracks and
// films carry subtitles, and an ignored stream is never mapped or decoded,
// so a subtitle or attachment cannot pull anything in; they only count
// against the stream limit.
//
// Deadlines (deadlines.go): every run has one, a fixed allowance plus an
// allowance per second of media (probe 60 s; a 6 s chunk encode 35 min),
// far above normal speed. A run past it is killed with its process group
// and fails with a *DeadlineError, which is retried like other failures; a
// probe past it refuses the upload.
//
// Subtitles (subtitles.go, webvtt.go, subpackage.go) are the exception to
// "Streams" above: Probe lists every subtitle stream. Text ones (subrip,
// ass/ssa, mov_text, webvtt; at most MaxSubtitleTracks per job, uploaded
// files included) are converted by
// ExtractSubtitles, one confined ffmpeg run over the user's file with the
// same input rules, mapping each by index to the webvtt muxer (ASS keeps
// its text, not its styling), with -copyts; the cues are then parsed and
// re-emitted in Go and moved by the video's start time, so they sit on
// the outputs' timeline, which starts at the first video frame.
// Image-based streams (PGS, DVB, DVD) would need OCR: SubtitlePlan names
// them in warnings. A subtitle file is never an upload; an .srt or .vtt
// sent beside one is parsed by ParseSubtitles (strict timings, UTF-8,
// 2 MiB, only <i>, <b>, <u> kept as markup, everything else escaped) and
// re-emitted, so no subtitle text reaches a manifest or player unparsed.
// Package publishes each track (SubtitleInput) as a sidecar
// subs/<n>-<lang>.vtt, a segmented WebVTT playlist on the video's own
// segment grid (read from the first video playlist; a cue is in every
// segment it overlaps, X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:0 since the fMP4
// video starts at 0), an entry of the master's "subs" group (added to
// whatever master the package wrote, with MasterPlaylist's lines; at
// most one DEFAULT=YES, names made unique) and a DASH text adaptation
// set whose BaseURL is the sidecar (forced tracks with DASH-IF's
// "forced-subtitle" role).
package transcoder

// Decisions recorded here (see also DESIGN.md, "Transcoding rules"):
//
//   - Rotation: Probe.Video.Rotation is the clockwise turn a player applies
//     for display, read the way ffmpeg's autorotate reads the display matrix
//     (ffprobe's matrix "rotation" negated; the legacy rotate tag as is).
//     EncodeChunk bakes it into the pixels with -noautorotate + transpose,
//     so outputs carry no rotation metadata.
//   - Chunking (chunkplan.go): a planned job (ChunkPlan.Equal) is cut into
//     Count equal chunks at keyframes, longer ones first; a user's chunk
//     length cuts at source keyframes nearest to multiples of the chunk
//     target, a remainder shorter than target+MinChunkSeconds kept whole.
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
//     written from the MPD (see Audio tracks); media playlists are marked
//     VOD and lose the wall-clock PROGRAM-DATE-TIME tags the muxer adds.
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
//     14496-15 annex E, av1C) and written into the MPD, from which the
//     HLS master is then written (buildMaster), so both name the profile,
//     tier and level the encoder chose.
//   - HDR (hdr.go, hdrprobe.go, hdrpkg.go): a source is HDR when its transfer is PQ
//     (smpte2084) or HLG (arib-std-b67); its HDR10 metadata (mastering
//     display, content light level) is read from the stream's side data or
//     else the first frame's, in one more ffprobe run only for HDR sources.
//     Plan marks a rung HDR (Rendition.Range) by Options.DynamicRange: by
//     default hevc and av1 rungs keep HDR and h264 rungs are tone-mapped;
//     "sdr" tone-maps all; "both" adds an SDR h264 ladder before an HDR one
//     named "-hdr". EncodeChunk splits the decoded picture once into an
//     untouched branch (HDR rungs: 10-bit, BT.2020 + PQ/HLG tags, x265 Main
//     10 with hdr10/hdr10-opt/master-display/max-cll, SVT-AV1 10-bit with
//     mastering-display/content-light) and one tone-mapped branch (SDR
//     rungs, 8-bit BT.709); hdrEncoderArgs rewrites encoderArgs' SDR
//     arguments rather than widening its signature. Package puts each codec
//     and range in its own DASH AdaptationSet with CICP properties and adds
//     VIDEO-RANGE to every HLS variant (ffmpeg 5.1 writes neither). The
//     quality reference follows the same split, so each rung is compared
//     like with like. A job's ranges are fixed at submit in its renditions,
//     so every chunk of a rung is encoded the same way.
//   - Quality (quality.go): SSIM and PSNR per rendition against the source,
//     on QualityWindows windows of QualityWindowLength each inside one
//     chunk of the source, the source scaled down to the rendition's size
//     (the encoder's scaler and rotation) rather than the rendition up: the
//     score is the encoder's loss at that size. Windows start half a frame
//     before a frame so both seeks select the same frames; PSNR is from the
//     mean MSE over the sampled frames, capped at MaxPSNR.
//   - Audio tracks (audiotracks.go, audio.go, packaudio.go): the job's
//     audio is one blob, an .m4a with one AAC track per kept stream (mono
//     stays mono, the rest stereo) plus a 5.1 track after the stereo one
//     of a stream of 6 channels or more, made in one ffmpeg run (one
//     decode per stream, asplit for the two renditions), each stream
//     aligned to the video on its own. The first track is the source's
//     default stream (else the first kept): it is the default in every
//     output, and the one the live view remuxes (Fragment maps track 0).
//     Languages are stored as MP4 wants them (ISO 639-2/T: "fre" becomes
//     "fra") and written as BCP 47 ("fr") in the HLS master and the MPD;
//     names (the title tag, else the language's name, else "Audio k",
//     " 5.1" for the surround rendition, made unique) travel in the
//     track's handler name, which MP4 keeps (it drops a title). Package
//     reads the tracks back from the blob (AudioTracksOf), so what it
//     lists is what was encoded, and writes the HLS master itself
//     (MasterPlaylist) from the MPD and those tracks: ffmpeg's own master
//     names no language or channels. DASH gets one AdaptationSet per
//     track, the 5.1 one too (its own channel configuration, same lang).
//   - Errors: problems with the user's media are *MediaError (not
//     retryable); everything else, including ctx cancel, is not.
