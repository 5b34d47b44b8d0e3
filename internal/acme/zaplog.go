package acme

import (
	"context"
	"log/slog"
	"maps"
	"slices"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newZapLogger returns a zap logger (what certmagic and acmez log to) whose
// entries go to log: zap's level mapped to slog's, the logger's name as
// "logger", the fields as attributes. Routine steps that certmagic logs at
// info (locks, rate limiter, each ACME request) go to debug, so that info
// tells what an operator needs: obtaining, obtained, renewing, failing.
func newZapLogger(log *slog.Logger) *zap.Logger {
	return zap.New(&zapCore{h: log.Handler()})
}

// zapCore is a zapcore.Core writing to a slog.Handler.
type zapCore struct {
	h      slog.Handler
	fields []zapcore.Field // from With, encoded at Write
}

func (c *zapCore) Enabled(l zapcore.Level) bool {
	// Routine messages are demoted at Write, which checks again.
	return c.h.Enabled(context.Background(), slogLevel(l))
}

func (c *zapCore) With(fields []zapcore.Field) zapcore.Core {
	return &zapCore{h: c.h, fields: append(slices.Clip(c.fields), fields...)}
}

func (c *zapCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *zapCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	level := slogLevel(e.Level)
	if level == slog.LevelInfo && routine[e.Message] {
		level = slog.LevelDebug
	}
	ctx := context.Background()
	if !c.h.Enabled(ctx, level) {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fields {
		f.AddTo(enc)
	}
	r := slog.NewRecord(e.Time, level, e.Message, 0)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("logger", e.LoggerName))
	}
	for _, k := range slices.Sorted(maps.Keys(enc.Fields)) {
		r.AddAttrs(slog.Any(k, enc.Fields[k]))
	}
	return c.h.Handle(ctx, r)
}

func (c *zapCore) Sync() error { return nil }

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	default: // error, dpanic, panic, fatal: certmagic never exits through its logger
		return slog.LevelError
	}
}

// routine are certmagic's info messages about steps of its work rather than
// results, logged at debug.
var routine = map[string]bool{
	"acquiring lock":                        true,
	"lock acquired":                         true,
	"releasing lock":                        true,
	"waiting on internal rate limiter":      true,
	"done waiting on internal rate limiter": true,
	"using ACME account":                    true,
	"creating new account because no account for configured email is known to us": true,
	"ACME account has empty status; registering account with ACME server":         true,
	"trying to solve challenge":                                true,
	"authorization already valid":                              true,
	"authorization finalized":                                  true,
	"validations succeeded; finalizing order":                  true,
	"successfully downloaded available certificate chains":     true,
	"served key authentication":                                true,
	"served key authentication certificate":                    true,
	"got renewal info":                                         true,
	"updated and stored ACME renewal information":              true,
	"replaced certificate in cache":                            true,
	"cleaning storage unit":                                    true,
	"storage cleaning happened too recently; skipping for now": true,
	"started background certificate maintenance":               true,
	"stopped background certificate maintenance":               true,
}
