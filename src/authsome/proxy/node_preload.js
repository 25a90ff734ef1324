// authsome run: make Node's built-in fetch go through the authsome proxy.
//
// Node 20 ignores HTTPS_PROXY for fetch and does not expose undici's
// ProxyAgent. Its fetch does read the global dispatcher from a well-known
// symbol, and that dispatcher's class (undici's Agent) accepts a `connect`
// function. We install an Agent whose connect opens a CONNECT tunnel through
// the proxy and runs TLS over it, so every fetch to an https:// URL (outside
// NO_PROXY) is proxied; TLS trust comes from NODE_EXTRA_CA_CERTS as usual.
'use strict';

(function installAuthsomeProxy() {
  const proxyEnv = process.env.HTTPS_PROXY || process.env.https_proxy;
  if (!proxyEnv || typeof globalThis.fetch !== 'function') return;
  let proxy;
  try {
    proxy = new URL(proxyEnv);
  } catch (_) {
    return;
  }
  const net = require('net');
  const tls = require('tls');
  const DISPATCHER = Symbol.for('undici.globalDispatcher.1');

  // Calling fetch once loads Node's bundled undici, which creates the default
  // global Agent: its constructor is the class we need.
  fetch('data:,').catch(() => {});
  const current = globalThis[DISPATCHER];
  if (!current) return;
  const Agent = current.constructor;

  const noProxy = (process.env.NO_PROXY || process.env.no_proxy || '')
    .split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const bypass = (host) => {
    const h = host.toLowerCase().replace(/^\[|\]$/g, '');
    return noProxy.some((entry) => entry === '*' || h === entry || h.endsWith('.' + entry.replace(/^\./, '')));
  };
  const auth = proxy.username
    ? 'Basic ' + Buffer.from(decodeURIComponent(proxy.username) + ':' + decodeURIComponent(proxy.password)).toString('base64')
    : null;

  function tunnel(opts, callback) {
    const host = opts.hostname;
    const port = Number(opts.port) || (opts.protocol === 'https:' ? 443 : 80);
    const authority = host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
    const socket = net.connect(Number(proxy.port) || 80, proxy.hostname.replace(/^\[|\]$/g, ''));
    let done = false;
    const fail = (err) => {
      if (done) return;
      done = true;
      socket.destroy();
      callback(err);
    };
    socket.once('error', fail);
    socket.once('connect', () => {
      let head = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n`;
      if (auth) head += `Proxy-Authorization: ${auth}\r\n`;
      socket.write(head + '\r\n');
    });
    let buffered = Buffer.alloc(0);
    const onData = (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) {
        if (buffered.length > 65536) fail(new Error('authsome proxy: response head too large'));
        return;
      }
      socket.removeListener('data', onData);
      const status = Number(buffered.subarray(0, end).toString('latin1').split(' ')[1]);
      if (status !== 200) return fail(new Error(`authsome proxy refused CONNECT to ${authority}: ${status}`));
      if (opts.protocol !== 'https:') {
        done = true;
        socket.removeListener('error', fail);
        return callback(null, socket);
      }
      const secure = tls.connect({ socket, servername: opts.servername || host, ALPNProtocols: ['http/1.1'] });
      secure.once('secureConnect', () => {
        if (done) return;
        done = true;
        socket.removeListener('error', fail);
        callback(null, secure);
      });
      secure.once('error', fail);
    };
    socket.on('data', onData);
  }

  const direct = new Agent();
  const proxied = new Agent({ connect: tunnel });
  const dispatcher = {
    __proto__: Agent.prototype,
    dispatch(opts, handler) {
      const url = new URL(opts.origin);
      return (bypass(url.hostname) ? direct : proxied).dispatch(opts, handler);
    },
    close(...args) {
      return Promise.all([direct.close(...args), proxied.close(...args)]);
    },
    destroy(...args) {
      return Promise.all([direct.destroy(...args), proxied.destroy(...args)]);
    },
  };
  globalThis[DISPATCHER] = dispatcher;
})();
