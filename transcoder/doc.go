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
