"""Constants shared by the proxy e2e tests: host names, test keys, provider definitions."""

from __future__ import annotations

import secrets

from tests.provider_defs import api_key_provider

HOSTS = [
    "api.openai.com",
    "api.anthropic.com",
    "unmatched.example",
    "api.openai.com.evil.test",
    "evil-api.openai.com",
]
OPENAI_KEY = "sk-test" + secrets.token_hex(16)
ANTHROPIC_KEY = "sk-ant-test" + secrets.token_hex(16)

OPENAI = api_key_provider("openai", "OpenAI", host="api.openai.com", schema_version=2)
ANTHROPIC = api_key_provider(
    "anthropic", "Anthropic", host="api.anthropic.com", header_name="x-api-key", header_prefix="", schema_version=2
)
DEFAULT_ROUTES = [
    {"provider": OPENAI, "secrets": {"api_key": OPENAI_KEY}},
    {"provider": ANTHROPIC, "secrets": {"api_key": ANTHROPIC_KEY}},
]

#: Node 20 `fetch` through the proxy: a model list, then the stream with each line's arrival and send times.
NODE_FETCH_STREAM = """
(async () => {
  const models = await (await fetch('https://api.openai.com/v1/models')).json();
  const res = await fetch('https://api.openai.com/stream');
  const reader = res.body.getReader();
  const arrivals = [], sent = [];
  let text = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += Buffer.from(value).toString();
    let nl;
    while ((nl = text.indexOf('\\n')) !== -1) {
      arrivals.push(Date.now() / 1000);
      sent.push(Number(text.slice(0, nl).split(' ').pop()));
      text = text.slice(nl + 1);
    }
  }
  console.log(JSON.stringify({model: models.data[0].id, env: process.env.OPENAI_API_KEY, arrivals, sent}));
})().catch((err) => { console.error(String(err)); process.exit(1); });
"""
