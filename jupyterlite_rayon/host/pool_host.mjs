// pool_host.mjs: the old single-file entry, kept for Node users; the host is index.mjs and the
// modules it imports (browsers load them through host/loader.py).
export * from './index.mjs';
