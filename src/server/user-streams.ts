/**
 * @module Live updates for one user's screens (the web UI's dashboard): named events pushed to every open
 * `/api/v1/stream` of that user. Senders never block: a viewer that cannot keep up loses its connection and
 * reconnects to a fresh snapshot.
 */
export type StreamSend = (event: string, data: unknown) => void;

export class UserStreams {
  private readonly byUser = new Map<string, Set<StreamSend>>();

  subscribe(userId: string, send: StreamSend): () => void {
    let set = this.byUser.get(userId);
    if (!set) this.byUser.set(userId, (set = new Set()));
    set.add(send);
    return () => {
      set!.delete(send);
      if (!set!.size) this.byUser.delete(userId);
    };
  }

  publish(userId: string, event: string, data: unknown): void {
    for (const send of this.byUser.get(userId) ?? []) send(event, data);
  }

  has(userId: string): boolean {
    return this.byUser.has(userId);
  }

  users(): string[] {
    return [...this.byUser.keys()];
  }
}
