/** Hash routes: #/, #/approvals, #/settings, #/w/{id}[/chat|/changes|/files|/terminal], #/w/{id}/c/{conversation}. */
import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { name: 'dashboard' }
  | { name: 'approvals' }
  | { name: 'settings' }
  | { name: 'workspace'; id: string; tab: 'chat' | 'changes' | 'files' | 'terminal'; conversation?: string };

export function parse(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('?')[0]!.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'approvals') return { name: 'approvals' };
  if (parts[0] === 'settings') return { name: 'settings' };
  if (parts[0] === 'w' && parts[1]) {
    if (parts[2] === 'c' && parts[3]) return { name: 'workspace', id: parts[1], tab: 'chat', conversation: parts[3] };
    const tab = parts[2] === 'changes' || parts[2] === 'files' || parts[2] === 'terminal' ? parts[2] : 'chat';
    return { name: 'workspace', id: parts[1], tab };
  }
  return { name: 'dashboard' };
}

export function href(r: Route): string {
  switch (r.name) {
    case 'dashboard':
      return '#/';
    case 'approvals':
      return '#/approvals';
    case 'settings':
      return '#/settings';
    case 'workspace':
      if (r.conversation) return `#/w/${encodeURIComponent(r.id)}/c/${encodeURIComponent(r.conversation)}`;
      return `#/w/${encodeURIComponent(r.id)}${r.tab === 'chat' ? '' : '/' + r.tab}`;
  }
}

export function navigate(r: Route | string): void {
  location.hash = typeof r === 'string' ? r : href(r);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parse(location.hash));
  useEffect(() => {
    const on = () => setRoute(parse(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}
