package provider

import (
	"bytes"
	"io"
	"net/http"
	"sync"
)

// bodies are the buffers answers are read into. A listing reads hundreds of
// pages of a few hundred kilobytes each: growing a fresh buffer for each
// spent a third of a steady cycle clearing memory.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooled is the largest buffer kept for reuse.
const maxPooled = 8 << 20

// ReadBody reads at most limit bytes of an answer's body into a reused
// buffer and calls use with them. The bytes are only valid during use: use
// must copy what it keeps.
func ReadBody(resp *http.Response, limit int64, use func(body []byte, readErr error) error) error {
	buf := bodies.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooled {
			bodies.Put(buf)
		}
	}()
	if n := resp.ContentLength; n > 0 && n <= limit {
		buf.Grow(int(n) + bytes.MinRead) // ReadFrom wants room to detect the end
	}
	_, err := buf.ReadFrom(io.LimitReader(resp.Body, limit))
	return use(buf.Bytes(), err)
}
