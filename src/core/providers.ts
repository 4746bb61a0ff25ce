/** @module Provider configurations: add, list, change, delete, and choosing one when the user did not. */
import { UserError } from '../protocol/errors.js';
import type { ProviderInfo } from '../protocol/types.js';
import type { Provider } from '../providers/provider.js';
import { PROVIDER_TYPES } from '../providers/registry.js';
import { StateStore, type ProviderRow } from '../store/state.js';
import { connectEngine, pingEngine } from '../providers/docker/engine.js';
import type { Principal } from './principal.js';

export interface AddProviderRequest {
  name: string;
  /** Defaults to the name, so `provider add docker` just works. */
  type?: string;
  options?: Record<string, string>;
}

export class ProviderService {
  constructor(
    private readonly store: StateStore,
    private readonly home: string,
    private readonly principal: Principal,
  ) {}

  /** Shared providers (added by an admin) and this user's own. */
  async list(): Promise<ProviderInfo[]> {
    return (await this.store.listProviders()).filter((r) => this.visible(r)).map((r) => this.info(r));
  }

  private visible(r: ProviderRow): boolean {
    return r.ownerId === null || r.ownerId === this.principal.userId;
  }

  async add(req: AddProviderRequest): Promise<ProviderInfo> {
    if (!/^[a-z][a-z0-9-]{0,31}$/.test(req.name)) {
      throw new UserError('invalid_argument', `Invalid provider name "${req.name}".`, 'Use lower-case letters, digits and dashes, starting with a letter.');
    }
    const type = req.type ?? req.name;
    const factory = PROVIDER_TYPES[type];
    if (!factory) {
      throw new UserError('invalid_argument', `Unknown provider type "${type}".`, `Known types: ${Object.keys(PROVIDER_TYPES).join(', ')}. Pass --type for a custom name.`);
    }
    const options = req.options ?? {};
    validateOptions(type, options);
    const missing = factory.options.filter((o) => o.required && !options[o.name]).map((o) => `--option ${o.name}=…`);
    if (missing.length) throw new UserError('invalid_argument', `The ${type} provider needs ${missing.length > 1 ? `${missing.slice(0, -1).join(', ')} and ${missing.at(-1)}` : missing[0]}.`, `See \`claude-vm provider add --help\`.`);
    factory.validate?.(options);
    // An admin's providers are shared with every user; anyone else's are their own.
    const added = await this.store.insertProvider({ name: req.name, type, options, ownerId: this.principal.isAdmin ? null : this.principal.userId });
    if (!added) {
      throw new UserError('already_exists', `Provider "${req.name}" already exists.`, `Change it with \`claude-vm provider set-options ${req.name} --option k=v\`, or pick another name.`);
    }
    return this.info((await this.store.getProvider(req.name))!);
  }

  async setOptions(name: string, options: Record<string, string>): Promise<ProviderInfo> {
    const row = await this.requireWritable(name);
    validateOptions(row.type, options);
    // An empty value removes the option, so a mistaken setting can be undone.
    const merged = Object.fromEntries(Object.entries({ ...row.options, ...options }).filter(([, v]) => v !== ''));
    PROVIDER_TYPES[row.type]?.validate?.(merged);
    await this.store.updateProviderOptions(name, merged);
    return this.info((await this.store.getProvider(name))!);
  }

  async delete(name: string): Promise<void> {
    await this.requireWritable(name);
    const n = await this.store.countWorkspacesOn(name);
    if (n > 0) {
      throw new UserError('wrong_state', `Provider "${name}" still has ${n} workspace(s).`, 'Delete them first with `claude-vm workspace delete <id> --purge`.');
    }
    await this.store.deleteProvider(name);
  }

  /** A shared provider changes only by an admin's hand; a user's own only by its owner. */
  private async requireWritable(name: string): Promise<ProviderRow> {
    const row = await this.require(name);
    if (row.ownerId === null && !this.principal.isAdmin) {
      throw new UserError('forbidden', `Provider "${name}" is shared; only an admin can change it.`, 'Add your own with `claude-vm provider add <name> --type <type>`.');
    }
    return row;
  }

  async require(name: string): Promise<ProviderRow> {
    const row = await this.store.getProvider(name);
    if (row && this.visible(row)) return row;
    // The two built-in types need no configuration; register them (shared) on first use.
    if (!row && (name === 'docker' || name === 'local')) {
      await this.store.insertProvider({ name, type: name, options: {}, ownerId: null });
      return (await this.store.getProvider(name))!;
    }
    throw new UserError('not_found', `No provider named "${name}".`, 'See `claude-vm provider list`, or add one with `claude-vm provider add <name>`.');
  }

  /** `--provider`, else $CLAUDE_VM_PROVIDER, else Docker when an engine answers, else the local provider. */
  async choose(requested?: string): Promise<{ row: ProviderRow; notice?: string }> {
    const name = requested || process.env.CLAUDE_VM_PROVIDER;
    if (name) return { row: await this.require(name) };
    const engine = connectEngine();
    try {
      await pingEngine(engine);
      return { row: await this.require('docker') };
    } catch {
      return { row: await this.require('local'), notice: `No Docker engine answered at ${engine.where}; using the local provider.` };
    }
  }

  instantiate(row: ProviderRow): Provider {
    const factory = PROVIDER_TYPES[row.type];
    if (!factory) throw new UserError('invalid_argument', `Provider "${row.name}" has unknown type "${row.type}".`, 'Upgrade claude-vm or delete the provider.');
    return factory.create(row.options, this.home);
  }

  private info(r: ProviderRow): ProviderInfo {
    return {
      name: r.name,
      type: r.type,
      options: StateStore.maskOptions(r.options),
      isolates: PROVIDER_TYPES[r.type]?.isolates ?? false,
      createdAt: r.createdAt,
    };
  }
}

function validateOptions(type: string, options: Record<string, string>): void {
  const known = PROVIDER_TYPES[type]!.options.map((o) => o.name);
  for (const k of Object.keys(options)) {
    if (!known.includes(k)) {
      throw new UserError(
        'invalid_argument',
        `Provider type "${type}" has no option "${k}".`,
        known.length ? `Known options: ${known.join(', ')}.` : `The ${type} provider takes no options.`,
      );
    }
  }
}
