package gsl

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Signing constants of Huawei Cloud's "SDK-HMAC-SHA256" scheme.
const (
	SignAlgorithm  = "SDK-HMAC-SHA256"
	HeaderSdkDate  = "X-Sdk-Date"
	SdkDateFormat  = "20060102T150405Z"
	headerAuthz    = "Authorization"
	headerHost     = "host"
	headerCType    = "content-type"
	emptyBodySHA   = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	unreservedMark = "-_.~"
)

// Sign adds X-Sdk-Date and Authorization to req, signing its method, path,
// query, headers (all but Content-Type, plus host) and body with the secret key.
func Sign(req *http.Request, body []byte, ak, sk string, now time.Time) {
	req.Header.Set(HeaderSdkDate, now.UTC().Format(SdkDateFormat))
	signed := SignedHeaders(req)
	sig := Signature(sk, StringToSign(CanonicalRequest(req, signed, body), req.Header.Get(HeaderSdkDate)))
	req.Header.Set(headerAuthz, SignAlgorithm+" Access="+ak+", SignedHeaders="+strings.Join(signed, ";")+", Signature="+sig)
}

// SignedHeaders lists the lowercase header names to sign: every header set on
// the request except Content-Type and Authorization, plus host; sorted.
func SignedHeaders(req *http.Request) []string {
	names := []string{headerHost}
	for k := range req.Header {
		lk := strings.ToLower(k)
		if lk == headerCType || lk == "authorization" || lk == headerHost {
			continue
		}
		names = append(names, lk)
	}
	sort.Strings(names)
	return names
}

// CanonicalRequest builds METHOD\nURI\nQUERY\nHEADERS\nSIGNED_HEADERS\nhex(sha256(body)).
func CanonicalRequest(req *http.Request, signed []string, body []byte) string {
	var b strings.Builder
	b.WriteString(req.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(req.URL.Path))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(req.URL.Query()))
	b.WriteByte('\n')
	for _, name := range signed {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(strings.TrimSpace(headerValue(req, name)))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signed, ";"))
	b.WriteByte('\n')
	b.WriteString(hexSHA256(body))
	return b.String()
}

// StringToSign is SDK-HMAC-SHA256\n<date>\nhex(sha256(canonical)).
func StringToSign(canonical, sdkDate string) string {
	return SignAlgorithm + "\n" + sdkDate + "\n" + hexSHA256([]byte(canonical))
}

// Signature is hex(hmac_sha256(sk, stringToSign)).
func Signature(sk, stringToSign string) string {
	m := hmac.New(sha256.New, []byte(sk))
	m.Write([]byte(stringToSign))
	return hex.EncodeToString(m.Sum(nil))
}

func headerValue(req *http.Request, lowerName string) string {
	if lowerName == headerHost {
		if req.Host != "" {
			return req.Host
		}
		return req.URL.Host
	}
	return req.Header.Get(lowerName)
}

func canonicalURI(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = escape(s)
	}
	uri := strings.Join(segs, "/")
	if !strings.HasSuffix(uri, "/") {
		uri += "/"
	}
	return uri
}

func canonicalQuery(q map[string][]string) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vals := append([]string(nil), q[k]...)
		sort.Strings(vals)
		for _, v := range vals {
			parts = append(parts, escape(k)+"="+escape(v))
		}
	}
	return strings.Join(parts, "&")
}

// escape percent-encodes everything but A-Za-z0-9-_.~, with uppercase hex.
func escape(s string) string {
	const hexdig = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte(unreservedMark, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexdig[c>>4])
		b.WriteByte(hexdig[c&15])
	}
	return b.String()
}

func hexSHA256(b []byte) string {
	if len(b) == 0 {
		return emptyBodySHA
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// ParseAuthorization splits an SDK-HMAC-SHA256 Authorization header into its
// access key, signed header list and signature. ok is false when it is not one.
func ParseAuthorization(h string) (ak string, signed []string, sig string, ok bool) {
	rest, found := strings.CutPrefix(h, SignAlgorithm+" ")
	if !found {
		return "", nil, "", false
	}
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Access":
			ak = v
		case "SignedHeaders":
			signed = strings.Split(v, ";")
		case "Signature":
			sig = v
		}
	}
	return ak, signed, sig, ak != "" && sig != "" && len(signed) > 0
}
