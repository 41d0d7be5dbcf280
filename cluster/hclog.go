package cluster

import (
	"context"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// slogHC adapts log/slog to hclog.Logger so raft's logs come out as the same
// structured JSON as ours, with the node's attributes on every line.
type slogHC struct {
	l    *slog.Logger
	name string
	args []any
}

func newHCLogger(l *slog.Logger, name string) hclog.Logger {
	return &slogHC{l: l.With("component", name), name: name}
}

func hcToSlog(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace, hclog.Debug:
		return slog.LevelDebug
	case hclog.Info, hclog.NoLevel, hclog.DefaultLevel:
		return slog.LevelInfo
	case hclog.Warn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (h *slogHC) Log(level hclog.Level, msg string, args ...any) {
	lv := hcToSlog(level)
	// raft is chatty at info about routine events; keep those at debug.
	if lv == slog.LevelInfo {
		lv = slog.LevelDebug
	}
	h.l.Log(context.Background(), lv, msg, args...)
}
func (h *slogHC) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *slogHC) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *slogHC) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *slogHC) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *slogHC) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }
func (h *slogHC) IsTrace() bool                 { return false }
func (h *slogHC) IsDebug() bool                 { return h.l.Enabled(context.Background(), slog.LevelDebug) }
func (h *slogHC) IsInfo() bool                  { return h.l.Enabled(context.Background(), slog.LevelInfo) }
func (h *slogHC) IsWarn() bool                  { return h.l.Enabled(context.Background(), slog.LevelWarn) }
func (h *slogHC) IsError() bool                 { return true }
func (h *slogHC) ImpliedArgs() []any            { return h.args }
func (h *slogHC) With(args ...any) hclog.Logger {
	return &slogHC{l: h.l.With(args...), name: h.name, args: append(append([]any{}, h.args...), args...)}
}
func (h *slogHC) Name() string { return h.name }
func (h *slogHC) Named(name string) hclog.Logger {
	n := name
	if h.name != "" {
		n = h.name + "." + name
	}
	return &slogHC{l: h.l.With("component", n), name: n, args: h.args}
}
func (h *slogHC) ResetNamed(name string) hclog.Logger {
	return &slogHC{l: h.l.With("component", name), name: name, args: h.args}
}
func (h *slogHC) SetLevel(hclog.Level)  {}
func (h *slogHC) GetLevel() hclog.Level { return hclog.Debug }
func (h *slogHC) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return slog.NewLogLogger(h.l.Handler(), slog.LevelInfo).Writer()
}
func (h *slogHC) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return slog.NewLogLogger(h.l.Handler(), slog.LevelInfo)
}
