/** @module Who is asking. Every service call on behalf of a user carries one; services only show that user's things. */

export interface Principal {
  userId: string;
  name: string;
  isAdmin: boolean;
}
