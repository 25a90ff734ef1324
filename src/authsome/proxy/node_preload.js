// authsome run: make Node's HTTP clients go through the authsome proxy.
//
// Loaded with NODE_OPTIONS=--require by the child of `authsome run`, which
// holds the proxy URL (with its credentials) in HTTPS_PROXY/HTTP_PROXY, the
// hosts to reach directly in NO_PROXY, and a CA bundle holding the run's CA in
// NODE_EXTRA_CA_CERTS (Node adds it to its default trust at start-up, so TLS
// to a provider verifies against the proxy's leaf with no option of ours).
// Node ignores those proxy variables itself, so this preload (our own code,
// nothing vendored) routes:
//
// - the `https` module (https.request/get, the global agent, `agent: false`,
//   and every agent whose createConnection is https.Agent's, such as those of
//   libraries built on `https`): each connection is a CONNECT tunnel through
//   the proxy, with TLS to the target run over it;
// - the `http` module: plain-HTTP requests are sent to the proxy in absolute
//   form (the proxy refuses them for a provider host: no credential travels
//   in clear);
// - the built-in fetch (Node 20 ignores HTTPS_PROXY and does not expose
//   undici's ProxyAgent; it reads the global dispatcher from a well-known
//   symbol, and that dispatcher's class accepts a `connect` function).
//
// Hosts in NO_PROXY (loopback, as `authsome run` sets it), Unix sockets and
// agents with their own connection logic (e.g. a proxy agent) are untouched.
'use strict';

(function installAuthsomeProxy() {
  const proxyEnv = process.env.HTTPS_PROXY || process.env.https_proxy;
  if (!proxyEnv) return;
  let proxy;
  try {
    proxy = new URL(proxyEnv);
  } catch (_) {
    return;
  }
  if (proxy.protocol !== 'http:') return;
  const net = require('net');
  const tls = require('tls');
  const http = require('http');
  const https = require('https');
  const { Duplex } = require('stream');

  const proxyHost = proxy.hostname.replace(/^\[|\]$/g, '');
  const proxyPort = Number(proxy.port) || 80;
  const auth = proxy.username
    ? 'Basic ' + Buffer.from(decodeURIComponent(proxy.username) + ':' + decodeURIComponent(proxy.password)).toString('base64')
    : null;
  const noProxy = (process.env.NO_PROXY || process.env.no_proxy || '')
    .split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const bypass = (host) => {
    const h = String(host).toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
    return noProxy.some((entry) => entry === '*' || h === entry || h.endsWith('.' + entry.replace(/^\./, '')));
  };
  const authority = (host, port) => {
    const h = String(host).replace(/^\[|\]$/g, '');
    return h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`;
  };

  // Asks the proxy (on `socket`) for a tunnel to `target`; done(err) or
  // done(null, bytes that followed the reply head) once it has answered.
  function handshake(socket, target, done) {
    let buffered = Buffer.alloc(0);
    let finished = false;
    const finish = (err, rest) => {
      if (finished) return;
      finished = true;
      socket.removeListener('data', onData);
      socket.removeListener('error', finish);
      socket.removeListener('close', onClose);
      done(err, rest);
    };
    const onClose = () => finish(new Error(`authsome proxy closed the CONNECT to ${target}`));
    const onData = (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) {
        if (buffered.length > 65536) finish(new Error('authsome proxy: response head too large'));
        return;
      }
      const status = Number(buffered.subarray(0, end).toString('latin1').split(' ')[1]);
      if (status !== 200) return finish(new Error(`authsome proxy refused CONNECT to ${target}: ${status}`));
      finish(null, buffered.subarray(end + 4));
    };
    socket.on('data', onData);
    socket.on('error', finish);
    socket.on('close', onClose);
    let head = `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n`;
    if (auth) head += `Proxy-Authorization: ${auth}\r\n`;
    socket.write(head + '\r\n');
  }

  // A stream that is a tunnel to host:port through the proxy, usable at once:
  // what is written before the proxy has answered waits for the answer. Agents
  // expect createConnection to return a socket synchronously, hence this.
  function tunnelStream(host, port) {
    const raw = net.connect(proxyPort, proxyHost);
    let queued = [];
    let ready = false;
    const stream = new Duplex({
      write(chunk, _encoding, callback) {
        if (ready) raw.write(chunk, callback);
        else queued.push([chunk, callback]);
      },
      read() {
        if (ready) raw.resume();
      },
      final(callback) {
        raw.end();
        callback();
      },
      destroy(err, callback) {
        raw.destroy();
        for (const [, pending] of queued) pending(err || new Error('authsome proxy tunnel closed'));
        queued = [];
        callback(err);
      },
    });
    handshake(raw, authority(host, port), (err, rest) => {
      if (err) return stream.destroy(err);
      ready = true;
      raw.on('error', (e) => stream.destroy(e));
      raw.on('data', (chunk) => {
        if (!stream.push(chunk)) raw.pause();
      });
      raw.on('end', () => stream.push(null));
      if (rest.length) stream.push(rest);
      for (const [chunk, callback] of queued) raw.write(chunk, callback);
      queued = [];
    });
    return { stream, raw };
  }

  // --- the https module -----------------------------------------------------
  const httpsConnection = https.Agent.prototype.createConnection;
  https.Agent.prototype.createConnection = function authsomeHttpsConnection(options, ...rest) {
    if (options === null || typeof options !== 'object' || options.socket || options.socketPath) {
      return httpsConnection.call(this, options, ...rest);
    }
    const host = options.host || options.hostname || 'localhost';
    if (bypass(host)) return httpsConnection.call(this, options, ...rest);
    const { stream, raw } = tunnelStream(host, Number(options.port) || 443);
    // https.Agent's own createConnection runs TLS over the tunnel (and keeps its session cache).
    const secure = httpsConnection.call(this, { ...options, socket: stream, path: null });
    // A pooled keep-alive socket is unref'd so the process can exit: the tunnel's socket must follow.
    const { ref, unref } = secure;
    secure.ref = function () {
      raw.ref();
      return ref.call(this);
    };
    secure.unref = function () {
      raw.unref();
      return unref.call(this);
    };
    return secure;
  };

  // --- the http module (plain HTTP) -----------------------------------------
  const VIA_PROXY = Symbol('authsome.viaProxy');
  const addRequest = http.Agent.prototype.addRequest;
  http.Agent.prototype.addRequest = function authsomeAddRequest(req, options, ...rest) {
    // https agents tunnel in createConnection; a request whose head is already
    // built, or whose path is already absolute (a proxy agent), is left alone.
    if (this.protocol === 'http:' && options !== null && typeof options === 'object' && !options.socketPath &&
        !req._header && typeof req.path === 'string' && req.path.startsWith('/')) {
      const host = options.host || options.hostname || 'localhost';
      if (!bypass(host)) {
        const port = Number(options.port) || 80;
        req.path = `http://${port === 80 ? authority(host, port).replace(/:80$/, '') : authority(host, port)}${req.path}`;
        if (auth) req.setHeader('Proxy-Authorization', auth);
        options = { ...options, [VIA_PROXY]: true };
      }
    }
    return addRequest.call(this, req, options, ...rest);
  };
  const httpConnection = http.Agent.prototype.createConnection;
  http.Agent.prototype.createConnection = function authsomeHttpConnection(options, ...rest) {
    if (options !== null && typeof options === 'object' && options[VIA_PROXY]) {
      options = { ...options, host: proxyHost, port: proxyPort, path: null, socketPath: undefined };
    }
    return httpConnection.call(this, options, ...rest);
  };

  // --- the built-in fetch ---------------------------------------------------
  if (typeof globalThis.fetch !== 'function') return;
  const DISPATCHER = Symbol.for('undici.globalDispatcher.1');
  // Calling fetch once loads Node's bundled undici, which creates the default
  // global Agent: its constructor is the class we need.
  fetch('data:,').catch(() => {});
  const current = globalThis[DISPATCHER];
  if (!current) return;
  const Agent = current.constructor;

  function tunnel(opts, callback) {
    const host = opts.hostname;
    const port = Number(opts.port) || (opts.protocol === 'https:' ? 443 : 80);
    const target = authority(host, port);
    const socket = net.connect(proxyPort, proxyHost);
    handshake(socket, target, (err) => {
      if (err) {
        socket.destroy();
        return callback(err);
      }
      if (opts.protocol !== 'https:') return callback(null, socket);
      let done = false;
      const fail = (e) => {
        if (done) return;
        done = true;
        socket.destroy();
        callback(e);
      };
      socket.once('error', fail);
      const secure = tls.connect({ socket, servername: opts.servername || host, ALPNProtocols: ['http/1.1'] });
      secure.once('secureConnect', () => {
        if (done) return;
        done = true;
        socket.removeListener('error', fail);
        callback(null, secure);
      });
      secure.once('error', fail);
    });
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
