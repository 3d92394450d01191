package linkcard

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Expected values worked out independently with Python's urllib.parse.quote
// (safe="~") and hmac, from the algorithm in DESIGN §2.
func TestSignVector(t *testing.T) {
	params := map[string]string{
		"Format": "JSON", "Version": "2021-05-20", "AccessKeyId": "testid", "SignatureMethod": "HMAC-SHA1",
		"SignatureVersion": "1.0", "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
		"Timestamp": "2026-11-23T04:00:00Z", "Action": "ListCardInfo", "PageNo": "1", "PageSize": "40",
		"TagName": "测试 a*b~c+d/e",
	}
	require.Equal(t, "AccessKeyId=testid&Action=ListCardInfo&Format=JSON&PageNo=1&PageSize=40&SignatureMethod=HMAC-SHA1&SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf&SignatureVersion=1.0&TagName=%E6%B5%8B%E8%AF%95%20a%2Ab~c%2Bd%2Fe&Timestamp=2026-11-23T04%3A00%3A00Z&Version=2021-05-20",
		CanonicalQuery(params))
	sts := StringToSign("GET", params)
	require.Equal(t, "GET&%2F&AccessKeyId%3Dtestid%26Action%3DListCardInfo%26Format%3DJSON%26PageNo%3D1%26PageSize%3D40%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26TagName%3D%25E6%25B5%258B%25E8%25AF%2595%2520a%252Ab~c%252Bd%252Fe%26Timestamp%3D2026-11-23T04%253A00%253A00Z%26Version%3D2021-05-20", sts)
	require.Equal(t, "vphWuONJGxQsIW5V3jBXmQEIO48=", Sign("testsecret", sts))
	params["Signature"] = "ignored"
	require.Equal(t, sts, StringToSign("GET", params), "Signature is not signed")
}

func TestPercentEncode(t *testing.T) {
	for in, want := range map[string]string{
		"a b": "a%20b", "*": "%2A", "~": "~", "+": "%2B", "/": "%2F", "卡": "%E5%8D%A1", "-_.": "-_.", "=&": "%3D%26",
	} {
		require.Equal(t, want, PercentEncode(in), in)
	}
}
