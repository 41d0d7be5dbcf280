// Command gen writes gosty.json from dashboards.Dashboard.
//
// It is run by `go generate ./dashboards`, whose working directory is the
// dashboards directory, so by default the file lands next to the package.
package main

import (
	"flag"
	"log"
	"os"

	"github.com/gosty/gosty/dashboards"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("gen: ")
	out := flag.String("o", "gosty.json", "file to write the dashboard JSON to")
	flag.Parse()
	b, err := dashboards.Dashboard()
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		log.Fatal(err)
	}
}
