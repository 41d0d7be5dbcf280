// Package ui embeds gosty's built web UI. The sources live in web/ at the
// top of the repository; `make ui` (npm ci, then esbuild through
// web/build.mjs) writes the build into dist/ here, and the next go build
// embeds it. dist/ is not committed except for a placeholder, so a clone
// without npm still builds: the node then serves a page saying how to build
// the UI.
package ui

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// FS returns the built UI: index.html and assets/. index.html is missing
// when the UI was not built.
func FS() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a valid path; fs.Sub cannot fail on it
	}
	return sub
}
