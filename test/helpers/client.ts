/**
 * A stored client as unit tests need one, without a database: every field
 * of `Client` with a plain default (an admin's confidential web client of
 * the code grant), changed by `overrides`. A new client field gets its
 * default here once.
 */
import type { Client } from '../../src/storage/types.js';

export function testClient(overrides: Partial<Client> = {}): Client {
  return {
    clientId: 'web',
    clientSecretHash: 'sha256$x',
    clientName: 'Web',
    redirectUris: ['https://app.example.com/cb'],
    postLogoutRedirectUris: [],
    backchannelLogoutUri: null,
    backchannelLogoutSessionRequired: false,
    grantTypes: ['authorization_code'],
    responseTypes: ['code'],
    tokenEndpointAuthMethod: 'client_secret_basic',
    scope: 'openid',
    resourceServer: false,
    jwks: null,
    jwksUri: null,
    dpopBoundAccessTokens: false,
    requirePushedAuthorizationRequests: false,
    origin: 'admin',
    registrationAccessTokenHash: null,
    lastUsedAt: null,
    createdAt: new Date(0),
    updatedAt: new Date(0),
    ...overrides,
  };
}
