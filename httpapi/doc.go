// Package httpapi serves gosty's public HTTP API on every node: job upload,
// listing, cancellation, server-sent events, published media with Range
// support, cluster status, liveness, readiness and Prometheus metrics.
//
// It consumes the small interfaces declared in service.go (Jobs, Blobs,
// Cluster, Health); the node package implements them. httpapi never imports
// node and never builds a filesystem path from user input.
//
// Decisions that implementers and clients rely on:
//
//   - openapi.yaml (OpenAPI 3.1, embedded; OpenAPI returns it) describes
//     every public route and is served at GET|HEAD /api/v1/openapi.yaml, a
//     read like the others. It is the contract: TestOpenAPIRoutes fails when
//     a route and the document disagree (x-gosty-access included, against
//     the classes TestEveryRouteClassified checks), TestOpenAPISchemasMatchGoTypes
//     when a view's fields do, and newEnv's servers check every request and
//     answer of the API tests against it (contract_test.go). The job JSON's
//     objects set additionalProperties: false: a field added to a view
//     needs its line in the document. Internal routes (internal*.go) are not
//     in it.
//
//   - Errors are always JSON {"error":{"code":"...","message":"..."}}, also for
//     unknown routes (404 not_found), wrong methods (405 method_not_allowed,
//     with an Allow header) and recovered panics (500 internal). Backend errors
//     map as: cluster.ErrNotFound → 404 not_found; cluster.ErrInvalid → 400
//     invalid_request; *transcoder.MediaError → 422 invalid_media (message =
//     Reason); cluster.ErrConflict → 409 conflict; cluster.ErrNotLeader → 503
//     unavailable (with Retry-After); cluster.ErrTooFewCopies → 503
//     insufficient_replicas (with Retry-After: the upload could not be stored
//     on as many nodes as --ack-replicas asks, and nothing was committed);
//     *http.MaxBytesError → 413 too_large; ErrTooManyIngests → 429
//     too_many_uploads (with Retry-After);
//     cluster.ErrNoSpace, ENOSPC or EDQUOT (cluster.IsNoSpace) → 507
//     insufficient_storage (Connection: close; the message gives the
//     admission's numbers, never a path); anything else → 500 internal,
//     logged, with the message "internal error".
//     Backends must wrap with %w so errors.Is/errors.As see these.
//
//   - Upload (POST /api/v1/jobs) streams: multipart/form-data is read part by
//     part with a multipart.Reader, and the `file` part is handed to
//     Jobs.Submit as its body without buffering. Because the job is planned
//     from the options while the file streams, an `options` part MUST come
//     before the `file` part. An `options` part (or a second `file` part) after
//     the file is detected when the file part ends: the body handed to Submit
//     then fails with an error wrapping cluster.ErrInvalid instead of returning
//     io.EOF, so Submit must treat any read error as a failed upload and commit
//     nothing; the client gets 400. The alternative is a raw body with
//     ?filename= (required) and optional ?options= (URL-encoded JSON). The
//     whole body is limited to Config.MaxUploadBytes (default 64 GiB) → 413.
//     `subtitles` parts (.srt/.vtt files, each optionally followed by
//     `subtitles_lang` and `subtitles_name`) also come before the file; they
//     are read whole (2 MiB each, 16 at most), parsed and re-emitted as
//     WebVTT here (subtitles.go), a bad one is 400 before anything is
//     stored, and Submit finds them in Upload.Sidecars. Raw and tus uploads
//     take none.
//     Success is 201 with the job view and Location: /api/v1/jobs/{id};
//     Submit answers only once the source is on the nodes --ack-replicas
//     asks for and the job is committed.
//
//   - URL submits (ingest.go): POST /api/v1/jobs with Content-Type
//     application/json and {"source_url": "...", "options": {...}} (unknown
//     fields and trailing data are 400; at most 64 KiB) goes to the
//     backend's URLIngest.SubmitURL (501 without one), which answers once
//     the job is committed in state ingesting: 202 with the job view and
//     Location. The node fetches the source afterwards (node/ingest.go). It
//     is a write like an upload (the same route, token and upload slot).
//     The job view shows source_url without its query or user info
//     (cluster.RedactURL).
//
//   - Resumable uploads (uploads.go, their files uploadstore.go; on when
//     Config.UploadDir is set) speak tus 1.0.0 through tusd's handler at
//     /api/v1/uploads/: POST creates
//     (Upload-Length required, at most MaxUploadBytes; Upload-Metadata
//     `filename` and `options`), PATCH appends at Upload-Offset, HEAD tells
//     the offset, DELETE drops the upload. The PATCH that completes an upload
//     hands the stored file to Jobs.Submit (the POST path) and answers 200
//     with the job view and Gosty-Job-Id, or the JSON error writeError would
//     give. 4xx outcomes delete the upload; 5xx keep it and a PATCH at the
//     full offset finishes it again. Outcomes are remembered for UploadTTL,
//     so HEAD/PATCH of a finished upload repeat them. POST, PATCH and DELETE
//     need the token (a finishing PATCH submits under it, as a POST does);
//     PATCH takes an upload slot. SweepUploads (run by RunUploadSweeper)
//     deletes uploads idle for UploadTTL. X-HTTP-Method-Override on a POST
//     is applied before any check, as tusd applies it.
//
//   - Resume anywhere (uploadid.go, uploadrelay.go): an upload lives in the
//     UploadDir of the node that took it, and its ID names that node,
//     "<node name>.<32 hex digits>" (128 random bits; a node whose name is
//     not [A-Za-z0-9][A-Za-z0-9._-]{0,127} gives out the bare 32 digits,
//     served by it alone). IDs are checked before use: anything else names
//     no upload (404, below). Location is relative (/api/v1/uploads/<id>),
//     valid on every node. A node that gets a HEAD, PATCH or DELETE of an upload
//     another node holds checks the token (401 before anything is relayed),
//     takes an upload slot for a PATCH (429), and relays the request through
//     Config.UploadRelay to that node's internal API
//     (/internal/v1/uploads/:id, behind the cluster key; the API token
//     identity travels as peerproto.HeaderSubmitter), streaming the body
//     (Expect: 100-continue: a refusal costs no bytes); the owner serves it
//     with its own slots and idle timeout (Internal → ServeRelayedUpload)
//     and never relays further. The answer is passed on: status, tus
//     headers, Gosty-Job-Id, the body. A client that stalls is cut at the
//     relaying node (408); an owner that is not alive in gossip, not
//     reachable, or that takes no byte for 1.5 × UploadIdleTimeout is 503
//     unavailable with Retry-After and a message naming the node (the
//     upload resumes when the node is back); an owner that refuses the
//     relay (another cluster key) is 502 bad_gateway. The owner's name is
//     only looked up among the gossip members (the node package): an ID
//     never makes a node relay to an address of the client's choosing. A
//     name no member and no log entry knows (ErrOwnerUnknown) is 404, an
//     owner away longer than the relaying node waits for it
//     (ErrOwnerGone; the node waits --dead-server-timeout) is 410 Gone.
//     Those, a malformed ID and the owner's own "no such upload" are tus's
//     answer for an upload that is not there (uploadMissing, as tusd's):
//     Tus-Resumable, no Upload-Offset, Cache-Control: no-store, no body to
//     a HEAD and "ERR_UPLOAD_NOT_FOUND: ..." / "ERR_UPLOAD_GONE: ..." text
//     otherwise, never JSON, so that a tus client starts a new upload. An
//     answer naming a job (Gosty-Job-Id) is passed on once the relaying
//     node has the job in its log too (bounded), so the client's next GET
//     on that connection finds it. The internal route's PATCH and DELETE
//     are writes (internalWrite: logged at info, like a blob PUT).
//
//   - DELETE /api/v1/jobs/{id} calls Jobs.Cancel and then looks the job up
//     again: 200 with the job view when the job still exists (a running job
//     that is now canceled), 204 with no body when it is gone (a finished job
//     that was deleted with its media).
//
//   - GET /api/v1/jobs/{id}/events is text/event-stream. Each event is
//     "event: job" with the job view as data and an increasing "id:"; one is
//     sent at once, then whenever the job's state or progress differs from
//     the last one sent (woken by Jobs.Changed, with a short poll as a
//     fallback for progress that changes without a log entry), and ": ping"
//     comments keep idle connections open every 15 s. The stream ends after a
//     terminal state (done, failed, canceled) has been sent, or with
//     "event: deleted" when the job disappears. A reconnect that carries
//     Last-Event-ID for a job already in a terminal state gets 204, which
//     tells browsers' EventSource to stop reconnecting.
//
//   - GET /api/v1/jobs?limit=N&cursor=C&state=S answers a page of the job
//     list, newest first: {"jobs": [...], "next_cursor": "..."} (no
//     next_cursor on the last page). limit is 1 to 500 (default 50); state
//     filters (queued, splitting, transcoding, packaging, done, failed,
//     canceled); the cursor is opaque and names the last job of the previous
//     page, so walking the cursors lists every job once even while jobs are
//     added. A bad limit, cursor or state is 400 invalid_request. List items
//     leave "chunks" out (chunk_count says how many); GET /api/v1/jobs/{id}
//     has them, for a done job as its manifest recorded them.
//
//   - GET /api/v1/events[?limit=N] streams the job list (for the web UI and
//     dashboards): "event: jobs" with the first page (as GET /api/v1/jobs
//     answers it, next_cursor included) first, then "event: job" with the
//     view of each job that is new or whose view changed in any field, and
//     "event: deleted" with {"id": "..."} for each job that is gone. Only
//     the jobs the log says changed are looked at (Jobs.ChangesSince), plus,
//     for progress (not in the log), the running jobs the stream has sent;
//     so a stream costs what changes, not the history, and a job beyond the
//     first page is sent when it changes. Changes are swept when Jobs.Changed
//     fires (at most once per 250 ms) and on the same short poll; pings as
//     above. The stream never ends by itself; a reconnecting client, or one
//     that fell too far behind the log, gets a fresh "jobs", which replaces
//     whatever it held.
//
//   - The web UI is served at GET / (index.html, Cache-Control no-cache, an
//     ETag, and a Content-Security-Policy that allows only the page's own
//     files plus blob: media and workers for the player) and GET
//     /assets/{name} (scripts and styles; names with an esbuild content hash
//     are cached as immutable; a precompressed .gz copy is sent to clients
//     that accept gzip). It routes with the URL fragment (#/jobs/{id},
//     #/cluster), so no other path serves it, and it uses only the public
//     API. Its files come from Config.UI, by default the build embedded by
//     package ui; a binary built without the UI serves a page at / that says
//     how to build it.
//
//   - Output files are served from GET|HEAD /api/v1/jobs/{id}/files/{path}
//     where path must be listed in the job's manifest (Jobs.Manifest; a job
//     of the first log format not compacted yet: a key of Job.Outputs), and
//     Blobs.OpenBlob gets the manifest too, whose holders hold every file it
//     lists; a malformed path (traversal,
//     absolute, backslash, NUL or control bytes, '%', an encoded separator;
//     cluster.CheckFilePath) is 400 before any lookup, an unknown one 404. Responses
//     use http.ServeContent (Range, If-Range, conditional requests) with a
//     strong ETag equal to the blob hash, Content-Type by extension, CORS
//     open to any origin for GET/HEAD, and Cache-Control "public,
//     max-age=31536000, immutable" (playlists of a job that is not done yet:
//     "no-cache"). Blobs.OpenBlob must return a seekable reader (ServeContent
//     seeks to find the size and to serve ranges). The one exception is
//     files/live/...: the play-while-encoding HLS view (live.go), generated
//     from the job state through Config.Live while the job transcodes,
//     "no-cache", 302 to the final playlists once the job is done.
//
//   - Every /api/v1 route requires "Authorization: Bearer <token>" with
//     one of Config.APIToken and Config.APITokens when any is set (401
//     unauthorized otherwise, with WWW-Authenticate): state-changing ones
//     (any method but GET, HEAD and OPTIONS) always, reads (the list, a
//     job, the event streams, the cluster, an upload's HEAD, files under
//     public playback) unless Config.PublicRead opens them. Under signed
//     playback a file takes a valid signature instead of a token. Open
//     whatever the tokens: /healthz, /readyz, the UI's page and assets
//     (they hold no data; the UI asks for a token), CORS preflights, and
//     /metrics unless Config.SeparateMetrics moves it to MetricsHandler
//     on an address of its own. Tokens are kept as SHA-256 digests and
//     compared in constant time, every one of them.
//
//   - Signed playback (Config.PlaybackKey set; playback.go): files need
//     ?exp=<unix>&sig=<hex HMAC-SHA256(key, "<job id>\n<exp>")>, valid for
//     every file of the job until exp, or an API token; otherwise 403
//     forbidden (checked before the job is looked up). Playlists served
//     under a signature have their URIs rewritten to carry it (HLS URI
//     lines and URI="" attributes; DASH media/initialization/index/
//     sourceURL attributes), so players resolving relative URLs keep it.
//     The job's storyboard track (storyboard.go) is signed the same way:
//     each cue's sprite URL, before its #xywh fragment.
//     The job JSON gives authorized callers (an API token, or none
//     configured) URLs signed for Config.PlaybackTTL; others bare URLs.
//     Signed responses are "Cache-Control: private".
//
//   - Limits: Config.MaxConcurrentUploads uploads at once per node (429
//     too_many_uploads with Retry-After beyond; the slot is released when
//     the handler returns, client disconnects included); a declared upload
//     length over MaxUploadBytes is 413 before it takes a slot, and one that
//     Config.Space does not admit (the data volume's room above the node's
//     reserves) 507 before a byte is read: POST, tus PATCH and a tus
//     creation's Upload-Length; a tus PATCH body is also admitted chunk by
//     chunk as it arrives (a POST's by the blob store it streams into), and
//     ENOSPC from tus's own writes is 507 too; an upload
//     that sends nothing for Config.UploadIdleTimeout is cut with 408 (its
//     read deadline moves with every read, so no fixed ReadTimeout cuts a
//     long upload); every other request body is capped at MaxJSONBytes
//     (413), and JSON endpoints decode with decodeJSON (strict, 413/400).
//
//   - POST /api/v1/cluster/scale with {"replicas": n} asks Config.Scaler (in
//     Kubernetes: patch the StatefulSet's scale subresource) for n nodes,
//     1..MaxScaleReplicas, and answers 202 {"replicas": n}. The body is
//     strict JSON (unknown fields, other types, trailing data → 400
//     invalid_request). Without a Scaler it is 501 not_implemented; a
//     refusal by the platform keeps its meaning (403 forbidden, 409
//     conflict, 400, 503 with Retry-After) with the platform's message, and
//     anything else is 502 scale_failed. GET /api/v1/cluster says
//     "scalable": whether a Scaler is configured (ClusterStatus.Scalable).
//
//   - Metrics on Config.Registry: gosty_http_requests_total{route,method,code},
//     gosty_http_request_duration_seconds{route,method} and
//     gosty_http_requests_in_flight. route is the gin route template (e.g.
//     "/api/v1/jobs/:id") or "unmatched", method is folded to a fixed set, so
//     label values are bounded. Long-lived event streams count their whole
//     lifetime in the duration histogram.
//
//   - Request logs go to Config.Logger; /healthz, /readyz and /metrics are
//     logged at debug level so probes and scrapes do not flood the log.
package httpapi
