/**
 * A virtualised vertical list with variable, measured heights: only the rows on screen (plus a margin) are in the
 * DOM. Heights start as an estimate and are measured with a ResizeObserver; when a row above the viewport changes
 * height, the scroll position is corrected so what you are reading does not move. With `follow`, the list sticks
 * to the bottom while it is scrolled there (new rows stay in view), like a chat.
 */
import type { ComponentChildren, VNode } from 'preact';
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';

export interface VirtualListProps<T> {
  items: T[];
  itemKey: (item: T) => string;
  render: (item: T, index: number) => VNode;
  /** Height guess for rows not measured yet. */
  estimate: number;
  /** Pixels rendered above and below the viewport. */
  overscan?: number;
  follow?: boolean;
  class?: string;
  label: string;
  /** Shown after the rows (not virtualised): a typing indicator, say. */
  footer?: ComponentChildren;
  onAtBottomChange?: (atBottom: boolean) => void;
  /** Set to a function that scrolls to the end. */
  scrollToEndRef?: { current: (() => void) | null };
}

export function VirtualList<T>(props: VirtualListProps<T>) {
  const { items, itemKey, estimate } = props;
  const overscan = props.overscan ?? 600;
  const scroller = useRef<HTMLDivElement>(null);
  const heights = useRef(new Map<string, number>());
  const atBottom = useRef(true);
  const [version, setVersion] = useState(0);
  const [view, setView] = useState({ top: 0, height: 800 });
  const frame = useRef(0);

  const keys = useMemo(() => items.map(itemKey), [items, itemKey]);

  // Offsets from the heights known so far: offsets[i] is row i's top, offsets[n] the total height.
  const offsets = useMemo(() => {
    const o = new Float64Array(keys.length + 1);
    for (let i = 0; i < keys.length; i++) o[i + 1] = o[i]! + (heights.current.get(keys[i]!) ?? estimate);
    return o;
  }, [keys, version, estimate]);
  const total = offsets[keys.length]!;

  const find = (y: number) => {
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (offsets[mid + 1]! <= y) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const first = Math.max(0, find(view.top - overscan));
  const last = Math.min(keys.length, find(view.top + view.height + overscan) + 1);

  const offsetsRef = useRef(offsets);
  offsetsRef.current = offsets;
  const keysRef = useRef(keys);
  keysRef.current = keys;
  const indexOf = useRef(new Map<string, number>());
  useMemo(() => {
    indexOf.current = new Map(keys.map((k, i) => [k, i]));
  }, [keys]);

  const readView = useCallback(() => {
    const el = scroller.current;
    if (!el) return;
    const bottom = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
    if (bottom !== atBottom.current) {
      atBottom.current = bottom;
      props.onAtBottomChange?.(bottom);
    }
    setView((v) => (v.top === el.scrollTop && v.height === el.clientHeight ? v : { top: el.scrollTop, height: el.clientHeight }));
  }, []);

  const onScroll = () => {
    if (frame.current) return;
    frame.current = requestAnimationFrame(() => {
      frame.current = 0;
      readView();
    });
  };

  const scrollToEnd = useCallback(() => {
    const el = scroller.current;
    if (!el) return;
    el.scrollTop = el.scrollHeight;
    atBottom.current = true;
    props.onAtBottomChange?.(true);
    readView();
  }, []);
  if (props.scrollToEndRef) props.scrollToEndRef.current = scrollToEnd;

  // Measure rendered rows; keep the reader's place when rows above them change height.
  const observer = useMemo(
    () =>
      new ResizeObserver((entries) => {
        const el = scroller.current;
        let changed = false;
        let shift = 0;
        for (const entry of entries) {
          const target = entry.target as HTMLElement;
          const key = target.dataset.key;
          if (key === undefined || !target.isConnected) continue;
          const h = target.offsetHeight;
          const old = heights.current.get(key) ?? estimate;
          if (Math.abs(h - old) < 0.5) {
            heights.current.set(key, h);
            continue;
          }
          heights.current.set(key, h);
          changed = true;
          const i = indexOf.current.get(key);
          if (el && i !== undefined && !atBottom.current && offsetsRef.current[i + 1]! <= el.scrollTop + 1) shift += h - old;
        }
        if (!changed) return;
        if (el && shift) el.scrollTop += shift;
        setVersion((v) => v + 1);
      }),
    [],
  );
  useEffect(() => () => observer.disconnect(), []);


  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const ro = new ResizeObserver(() => {
      if (atBottom.current && props.follow) el.scrollTop = el.scrollHeight;
      readView();
    });
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  // Following: after each change, stay at the bottom.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (el && props.follow && atBottom.current && el.scrollTop + el.clientHeight < el.scrollHeight - 1) {
      el.scrollTop = el.scrollHeight;
      readView();
    }
  });

  const rows: VNode[] = [];
  for (let i = first; i < last; i++) {
    const item = items[i]!;
    rows.push(
      <Row key={keys[i]} k={keys[i]!} observer={observer}>
        {props.render(item, i)}
      </Row>,
    );
  }

  return (
    <div ref={scroller} class={`vlist ${props.class ?? ''}`} onScroll={onScroll} role="log" aria-label={props.label} tabIndex={0}>
      <div class="vspace" style={{ height: `${total}px` }}>
        <div class="vwindow" style={{ transform: `translateY(${offsets[first]}px)` }}>
          {rows}
        </div>
      </div>
      {props.footer}
    </div>
  );
}

function Row(props: { k: string; observer: ResizeObserver; children: ComponentChildren }) {
  const ref = useRef<HTMLDivElement>(null);
  useLayoutEffect(() => {
    const node = ref.current!;
    props.observer.observe(node);
    return () => props.observer.unobserve(node);
  }, []);
  return (
    <div ref={ref} data-key={props.k} class="vrow">
      {props.children}
    </div>
  );
}
