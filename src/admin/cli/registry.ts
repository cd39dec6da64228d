/**
 * The CLI's command groups. Adding a group is one file exporting a
 * `CommandGroup` plus one line here; it then works both locally and through
 * a running server's control socket.
 */
import { clientCommands } from './clients.js';
import { eventCommands } from './events.js';
import { identityProviderCommands } from './identity-providers.js';
import { initialAccessTokenCommands } from './initial-access-tokens.js';
import { keyCommands } from './keys.js';
import type { Command, CommandGroup } from './types.js';
import { userCommands } from './users.js';

export const commandGroups: readonly CommandGroup[] = [
  clientCommands,
  initialAccessTokenCommands,
  userCommands,
  identityProviderCommands,
  keyCommands,
  eventCommands,
];

export function findGroup(name: string): CommandGroup | undefined {
  return commandGroups.find((g) => g.name === name);
}

export function findCommand(group: string, command: string): Command | undefined {
  return findGroup(group)?.commands.find((c) => c.name === command);
}
