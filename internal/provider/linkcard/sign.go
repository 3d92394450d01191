package linkcard

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/url"
	"sort"
	"strings"
)

// Alibaba Cloud RPC signature, version 1.0 (HMAC-SHA1).
const (
	SignatureMethod  = "HMAC-SHA1"
	SignatureVersion = "1.0"
	APIVersion       = "2021-05-20"
	TimestampFormat  = "2006-01-02T15:04:05Z"
)

// PercentEncode encodes s per RFC 3986 as Alibaba's RPC signature requires:
// unreserved characters stay, space is %20, * is %2A, ~ stays.
func PercentEncode(s string) string {
	e := url.QueryEscape(s)
	e = strings.ReplaceAll(e, "+", "%20")
	e = strings.ReplaceAll(e, "*", "%2A")
	return strings.ReplaceAll(e, "%7E", "~")
}

// CanonicalQuery sorts the parameters by name and joins the encoded k=v pairs
// with &. Signature itself is left out.
func CanonicalQuery(params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = PercentEncode(k) + "=" + PercentEncode(params[k])
	}
	return strings.Join(parts, "&")
}

// StringToSign is METHOD&%2F&percentEncode(canonical query).
func StringToSign(method string, params map[string]string) string {
	return method + "&" + PercentEncode("/") + "&" + PercentEncode(CanonicalQuery(params))
}

// Sign returns base64(hmac_sha1(secret + "&", stringToSign)).
func Sign(secret, stringToSign string) string {
	m := hmac.New(sha1.New, []byte(secret+"&"))
	m.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
