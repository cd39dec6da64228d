/**
 * The little of oidc-provider v9 the benchmark's peer server and the
 * upstream provider of the "Sign in with …" tests (test/helpers/upstream-oidc.ts)
 * use (the package ships no type declarations).
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, Server, ServerResponse } from 'node:http';

  export default class Provider {
    constructor(issuer: string, configuration?: Record<string, unknown>);
    listen(port: number, host?: string, callback?: () => void): Server;
    /** The request handler, for a server of one's own. */
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    proxy: boolean;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }
}
