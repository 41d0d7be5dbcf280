package cluster

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// ManifestVersion is the version of the manifest document this build writes
// and reads.
const ManifestVersion = 1

// MaxManifestBytes is the largest manifest blob a node reads; a larger one
// is refused, not parsed.
const MaxManifestBytes = 256 << 20

// Manifest is the document a done job's manifest blob holds: every file the
// job published, with its blob, and how its chunks were made. It keeps the
// per-file facts out of the replicated state (a ten-minute job publishes
// thousands of files); being content-addressed and naming the job, it is
// stored and replicated like any output, and a node that holds it holds
// every file it lists (BlobHolders.Set).
type Manifest struct {
	V      int            `json:"v"`
	Job    string         `json:"job"`
	Files  []ManifestFile `json:"files"` // sorted by path
	Chunks []ChunkSummary `json:"chunks,omitempty"`

	byPath map[string]int
}

// ManifestFile is one published file.
type ManifestFile struct {
	Path string `json:"path"`
	Hash string `json:"hash"`
	Size int64  `json:"size"`
}

// Ref is the file's blob.
func (f ManifestFile) Ref() BlobRef { return BlobRef{Hash: f.Hash, Size: f.Size} }

// ChunkSummary is what a done job's chunk looked like when it was packaged.
type ChunkSummary struct {
	Index     int     `json:"index"`
	Start     float64 `json:"start"`
	Duration  float64 `json:"duration"`
	Frames    int     `json:"frames"`
	EncodedBy string  `json:"encoded_by,omitempty"`
	Attempts  int     `json:"attempts"`
	Bytes     int64   `json:"bytes"`         // the chunk's source
	Encoded   int64   `json:"encoded_bytes"` // all its renditions
}

// NewManifest builds the manifest of a job's published files and chunks.
func NewManifest(jobID string, files map[string]BlobRef, chunks []Chunk) *Manifest {
	m := &Manifest{V: ManifestVersion, Job: jobID, Files: make([]ManifestFile, 0, len(files))}
	for rel, b := range files {
		m.Files = append(m.Files, ManifestFile{Path: rel, Hash: b.Hash, Size: b.Size})
	}
	slices.SortFunc(m.Files, func(a, b ManifestFile) int { return strings.Compare(a.Path, b.Path) })
	for _, c := range chunks {
		cs := ChunkSummary{Index: c.Index, Start: c.Start, Duration: c.Duration, Frames: c.Frames,
			EncodedBy: c.EncodedBy, Attempts: c.Attempts, Bytes: c.Source.Size}
		for _, o := range c.Outputs {
			cs.Encoded += o.Size
		}
		m.Chunks = append(m.Chunks, cs)
	}
	m.indexFiles()
	return m
}

// Encode returns the document's bytes (the same manifest always encodes to
// the same bytes, so the same outputs name the same blob).
func (m *Manifest) Encode() []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("encode manifest: %v", err)) // plain data only
	}
	return b
}

// DecodeManifest parses and checks a manifest document.
func DecodeManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode manifest: %w", err)
	}
	if m.V != ManifestVersion {
		return nil, fmt.Errorf("decode manifest: version %d, this build reads %d", m.V, ManifestVersion)
	}
	for i, f := range m.Files {
		if err := CheckFilePath(f.Path); err != nil {
			return nil, fmt.Errorf("decode manifest: file %d: %w", i, err)
		}
		if !ValidHash(f.Hash) || f.Size < 0 {
			return nil, fmt.Errorf("decode manifest: file %q: malformed blob", f.Path)
		}
		if i > 0 && m.Files[i-1].Path >= f.Path {
			return nil, fmt.Errorf("decode manifest: files out of order at %q", f.Path)
		}
	}
	m.indexFiles()
	return &m, nil
}

func (m *Manifest) indexFiles() {
	m.byPath = make(map[string]int, len(m.Files))
	for i, f := range m.Files {
		m.byPath[f.Path] = i
	}
}

// File returns the blob published at rel.
func (m *Manifest) File(rel string) (BlobRef, bool) {
	i, ok := m.byPath[rel]
	if !ok {
		return BlobRef{}, false
	}
	return m.Files[i].Ref(), true
}

// Published is what the files add up to.
func (m *Manifest) Published() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}
