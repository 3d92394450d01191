package sim

import (
	"crypto/hmac"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/simwatch/simwatch/internal/provider/linkcard"
)

// LinkCard's ListCardInfo (seed 002), served at GET /?Action=ListCardInfo
// with RPC signature v1 checked like the real service.

type cardDTO struct {
	Status         string   `json:"Status"`
	DataType       string   `json:"DataType"`
	PeriodRestFlow string   `json:"PeriodRestFlow"`
	CredentialType string   `json:"CredentialType"`
	PeriodAddFlow  string   `json:"PeriodAddFlow"`
	PeriodSmsUse   string   `json:"PeriodSmsUse"`
	DataLevel      string   `json:"DataLevel"`
	OsStatus       string   `json:"OsStatus"`
	AliFee         string   `json:"AliFee"`
	IsAutoRecharge bool     `json:"IsAutoRecharge"`
	ExpireTime     string   `json:"ExpireTime"`
	ApnName        string   `json:"ApnName"`
	ActiveTime     string   `json:"ActiveTime"`
	Iccid          string   `json:"Iccid"`
	Vendor         string   `json:"Vendor"`
	Period         string   `json:"Period"`
	CertifyType    string   `json:"CertifyType"`
	SimType        string   `json:"SimType"`
	VsimInstanceID int64    `json:"VsimInstanceId"`
	CredentialNo   string   `json:"CredentialNo"`
	TagList        []tagDTO `json:"TagList"`
	Imsi           []string `json:"Imsi"`
	Msisdn         []string `json:"Msisdn"`
	NetworkType    string   `json:"NetworkType"`
}

type tagDTO struct {
	TagName string `json:"TagName"`
	ID      int64  `json:"Id"`
}

var chinaTime = time.FixedZone("UTC+8", 8*3600)

func lcTime(t time.Time) string { return t.In(chinaTime).Format("2006-01-02 15:04:05") }

// lcStatus maps the simulator's (GSL) status to LinkCard's Status and OsStatus.
func (c *card) lcStatus() (status, osStatus string) {
	switch c.Status {
	case gslTestable:
		return "10", "10"
	case gslInactive, gslActivatable:
		return "20", "20"
	case gslInUse:
		return "30", "100"
	case gslStopped:
		if c.OperatorStatus == 1 {
			return "35", "300"
		}
		return "35", "200"
	default:
		return "50", "50"
	}
}

// flowString writes MB the way LinkCard does: KB below 1 MB, thousands
// separators above 999 MB.
func flowString(mb float64) string {
	switch {
	case mb == 0:
		return "0KB"
	case mb < 1:
		return strconv.FormatFloat(mb*1024, 'f', 2, 64) + "KB"
	case mb >= 1000:
		whole := int64(mb)
		frac := int64((mb-float64(whole))*100 + 0.5)
		if frac == 100 {
			whole, frac = whole+1, 0
		}
		s := strconv.FormatInt(whole, 10)
		var b strings.Builder
		for i, r := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(r)
		}
		return fmt.Sprintf("%s.%02dMB", b.String(), frac)
	default:
		return strconv.FormatFloat(mb, 'f', 2, 64) + "MB"
	}
}

func dataLevel(mb float64) string {
	if mb >= 1024 && mb == float64(int64(mb)) && int64(mb)%1024 == 0 {
		return strconv.FormatInt(int64(mb)/1024, 10) + "GB"
	}
	return strconv.FormatFloat(mb, 'f', -1, 64) + "MB"
}

func (c *card) linkcardDTO() cardDTO {
	status, osStatus := c.lcStatus()
	d := cardDTO{
		Status: status, OsStatus: osStatus, DataType: "singlecard", CredentialType: "singlecard",
		PeriodRestFlow: flowString(c.left()), PeriodAddFlow: flowString(c.Used), PeriodSmsUse: "0",
		DataLevel: dataLevel(c.Total), AliFee: "ali_2", IsAutoRecharge: true,
		ExpireTime: lcTime(c.ExpireTime), ApnName: "cmiot", ActiveTime: lcTime(c.ActDate),
		Iccid: c.ICCID, Vendor: "CMCC", Period: "1101", CertifyType: "enterprise", SimType: "industry-nano",
		VsimInstanceID: c.ID, CredentialNo: fmt.Sprintf("CM-SINGLE-%s", dataLevel(c.Total)),
		Imsi: []string{c.IMSI}, Msisdn: []string{c.MSISDN}, NetworkType: c.NetworkType,
	}
	if c.PoolID != 0 {
		d.DataType, d.CredentialType = "sameflowcard", "sameflowcard"
		d.CredentialNo = fmt.Sprintf("CM-POOL-%d", c.PoolID)
	}
	if c.Tags != "" {
		d.TagList = []tagDTO{{TagName: c.Tags, ID: 24}}
	}
	return d
}

// lcError writes Alibaba's error envelope.
func lcError(w http.ResponseWriter, status int, requestID, code, msg string) {
	writeJSON(w, status, map[string]string{"RequestId": requestID, "HostId": "linkcard.aliyuncs.com", "Code": code, "Message": msg,
		"Recommend": "https://api.aliyun.com/troubleshoot?q=" + code})
}

func (s *Server) linkcard(w http.ResponseWriter, r *http.Request) {
	rid := strings.ToUpper(newRequestID()[:8]) + "-SIM"
	s.mu.Lock()
	s.stats.Requests++
	s.stats.ByPath["linkcard"]++
	s.mu.Unlock()
	q := r.URL.Query()
	params := map[string]string{}
	for k, v := range q {
		params[k] = v[0]
	}
	if code, msg, status := s.checkRPC(params); code != "" {
		s.mu.Lock()
		s.stats.Rejected++
		s.mu.Unlock()
		lcError(w, status, rid, code, msg)
		return
	}
	if params["Action"] != "ListCardInfo" {
		lcError(w, http.StatusNotFound, rid, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
		return
	}
	pageNo, err := strconv.Atoi(params["PageNo"])
	if params["PageNo"] == "" {
		pageNo, err = 1, nil
	}
	pageSize, err2 := strconv.Atoi(params["PageSize"])
	if params["PageSize"] == "" {
		pageSize, err2 = 10, nil
	}
	if err != nil || err2 != nil || pageNo < 1 || !slices.Contains([]int{10, 15, 25, 40}, pageSize) {
		writeJSON(w, http.StatusOK, map[string]any{"RequestId": rid, "Success": false, "Code": "IllegalParameter",
			"ErrorMessage": "PageNo must be at least 1 and PageSize one of 10, 15, 25, 40."})
		return
	}
	f := s.takeFault("linkcard", pageNo)
	if f != nil {
		s.mu.Lock()
		s.stats.Faults++
		s.mu.Unlock()
		if f.applyLinkCard(w, r, rid) {
			return
		}
	}
	fl := s.o.Fleet
	fl.mu.RLock()
	cards := fl.cards
	if iccid, ok := params["Iccid"]; ok {
		cards = fl.byICCID(iccid)
	}
	idx := f.pick(len(cards), pageNo, pageSize)
	page := make([]*card, len(idx))
	for i, j := range idx {
		page[i] = cards[j]
	}
	list := renderList(page, (*card).linkcardDTO, func(c *card) *overrides { return &c.over })
	n := len(cards)
	fl.mu.RUnlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"Code": "200", "Success": true, "RequestId": rid,
		"Data": map[string]any{"PageNo": pageNo, "PageSize": pageSize, "PageCount": f.pageCount(n, pageSize), "Total": f.count(n), "List": list},
	})
}

// checkRPC verifies the common parameters and the signature.
func (s *Server) checkRPC(p map[string]string) (code, msg string, status int) {
	if p["Format"] != "JSON" && p["Format"] != "" {
		return "InvalidParameter", "Format must be JSON here.", http.StatusBadRequest
	}
	if p["Version"] != linkcard.APIVersion {
		return "InvalidVersion", "Specified parameter Version is not valid.", http.StatusBadRequest
	}
	if len(s.o.Keys) == 0 {
		return "", "", 0
	}
	secret, ok := s.o.Keys[p["AccessKeyId"]]
	if !ok {
		return "InvalidAccessKeyId.NotFound", "Specified access key is not found.", http.StatusNotFound
	}
	if p["SignatureMethod"] != linkcard.SignatureMethod || p["SignatureVersion"] != linkcard.SignatureVersion || p["SignatureNonce"] == "" {
		return "IncompleteSignature", "The request signature does not conform to Aliyun standards.", http.StatusBadRequest
	}
	ts, err := time.Parse(linkcard.TimestampFormat, p["Timestamp"])
	if err != nil {
		return "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.", http.StatusBadRequest
	}
	if d := s.o.Now().Sub(ts); d > s.o.MaxSkew || d < -s.o.MaxSkew {
		return "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.", http.StatusBadRequest
	}
	want := linkcard.Sign(secret, linkcard.StringToSign(http.MethodGet, p))
	if !hmac.Equal([]byte(want), []byte(p["Signature"])) {
		return "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.", http.StatusBadRequest
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nonces == nil {
		s.nonces = map[string]bool{}
	}
	if s.nonces[p["SignatureNonce"]] {
		return "SignatureNonceUsed", "Specified signature nonce was used already.", http.StatusBadRequest
	}
	s.nonces[p["SignatureNonce"]] = true
	return "", "", 0
}

// applyLinkCard is apply for LinkCard's error shapes.
func (f *Fault) applyLinkCard(w http.ResponseWriter, r *http.Request, rid string) bool {
	switch f.Kind {
	case FaultSlow, FaultMalformed, FaultBody, FaultRedirect, FaultDrift, FaultDrop, FaultDup, FaultCount:
		return f.apply(w, r)
	case FaultThrottle:
		if f.Status == 503 {
			lcError(w, http.StatusServiceUnavailable, rid, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")
		} else {
			lcError(w, http.StatusBadRequest, rid, "Throttling.User", "Request was denied due to user flow control.")
		}
	case FaultFail:
		code := f.Code
		if code == "" {
			code = "SystemError"
		}
		writeJSON(w, http.StatusOK, map[string]any{"RequestId": rid, "Success": false, "Code": code, "ErrorMessage": "A system error occurred."})
	default:
		status, code := f.Status, f.Code
		if status == 0 {
			status = http.StatusInternalServerError
		}
		if code == "" {
			code = "InternalError"
		}
		lcError(w, status, rid, code, "The request processing has failed due to some unknown error.")
	}
	return true
}
