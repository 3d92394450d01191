package gsl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/simwatch/simwatch/internal/provider"
)

// IAMAuth is Huawei IAM password authentication: the client obtains a token
// from POST {Endpoint}/v3/auth/tokens and refreshes it before it expires.
type IAMAuth struct {
	Endpoint string // e.g. https://iam.myhuaweicloud.com
	Domain   string // account name
	User     string
	Password string
	Project  string // scope, e.g. cn-north-4; empty scopes to the domain
}

// refreshBefore is how long before expiry a token is replaced, so a long
// listing never starts with a token about to lapse.
const refreshBefore = time.Hour

type tokenCache struct {
	auth IAMAuth
	http *http.Client
	now  func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
}

func (t *tokenCache) invalidate() {
	t.mu.Lock()
	t.token = ""
	t.mu.Unlock()
}

func (t *tokenCache) get(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token != "" && t.now().Before(t.expires.Add(-refreshBefore)) {
		return t.token, nil
	}
	tok, exp, err := t.fetch(ctx)
	if err != nil {
		return "", err
	}
	t.token, t.expires = tok, exp
	return tok, nil
}

func (t *tokenCache) fetch(ctx context.Context) (string, time.Time, error) {
	type named struct {
		Name string `json:"name"`
	}
	var body struct {
		Auth struct {
			Identity struct {
				Methods  []string `json:"methods"`
				Password struct {
					User struct {
						Name     string `json:"name"`
						Password string `json:"password"`
						Domain   named  `json:"domain"`
					} `json:"user"`
				} `json:"password"`
			} `json:"identity"`
			Scope map[string]named `json:"scope"`
		} `json:"auth"`
	}
	body.Auth.Identity.Methods = []string{"password"}
	u := &body.Auth.Identity.Password.User
	u.Name, u.Password, u.Domain.Name = t.auth.User, t.auth.Password, t.auth.Domain
	if t.auth.Project != "" {
		body.Auth.Scope = map[string]named{"project": {Name: t.auth.Project}}
	} else {
		body.Auth.Scope = map[string]named{"domain": {Name: t.auth.Domain}}
	}
	data, _ := json.Marshal(body)
	const op = "POST /v3/auth/tokens"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(t.auth.Endpoint, "/")+"/v3/auth/tokens", bytes.NewReader(data))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("gsl: iam: %w", err)
	}
	req.Header.Set("Content-Type", "application/json;charset=utf8")
	resp, err := t.http.Do(req)
	if err != nil {
		return "", time.Time{}, &provider.TransportError{Op: "gsl: iam " + op, Err: err}
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := provider.CheckRedirect("gsl", "iam "+op, resp); err != nil {
		return "", time.Time{}, err
	}
	if resp.StatusCode/100 != 2 {
		e := &APIError{Op: "iam " + op, Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
		var eb struct {
			Error struct {
				Code    any    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(respBody, &eb) == nil {
			e.Code, e.Message = fmt.Sprint(eb.Error.Code), eb.Error.Message
		}
		return "", time.Time{}, e
	}
	tok := resp.Header.Get("X-Subject-Token")
	if tok == "" {
		return "", time.Time{}, fmt.Errorf("gsl: iam %s: answer has no X-Subject-Token header", op)
	}
	var tb struct {
		Token struct {
			ExpiresAt time.Time `json:"expires_at"`
		} `json:"token"`
	}
	exp := t.now().Add(24 * time.Hour)
	if json.Unmarshal(respBody, &tb) == nil && !tb.Token.ExpiresAt.IsZero() {
		exp = tb.Token.ExpiresAt
	}
	return tok, exp, nil
}
