/**
 * The little of oidc-provider v9 the benchmark's peer server uses (the
 * package ships no type declarations).
 */
declare module 'oidc-provider' {
  import type { Server } from 'node:http';

  export default class Provider {
    constructor(issuer: string, configuration?: Record<string, unknown>);
    listen(port: number, host?: string, callback?: () => void): Server;
    proxy: boolean;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }
}
