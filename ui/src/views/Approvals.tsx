/** Approvals waiting for a decision, across all conversations: the full tool input, Approve / Always allow / Deny. */
import { enc } from '../api';
import { ToolInput } from '../components/tool';
import { ago, workspaceName } from '../format';
import { setState, useStore } from '../store';
import { ApprovalButtons } from './Conversation';

export function Approvals() {
  const approvals = useStore((s) => s.approvals);
  const workspaces = useStore((s) => s.workspaces);
  return (
    <section class="page" aria-labelledby="ap-title">
      <div class="page-head">
        <h1 id="ap-title">Approvals</h1>
      </div>
      {approvals.length === 0 ? (
        <div class="empty card">
          <h2>Nothing is waiting for you</h2>
          <p class="muted">When an agent asks to run a command or change a file that needs your approval, it shows up here.</p>
        </div>
      ) : (
        <ul class="approval-list">
          {approvals.map((a) => {
            const w = workspaces?.find((x) => x.id === a.workspaceId);
            return (
              <li key={a.approvalId} class="card approval-card">
                <div class="approval-top">
                  <h2>{a.tool}</h2>
                  <span class="muted small">
                    <a href={`#/w/${enc(a.workspaceId)}/c/${enc(a.conversationId)}`}>{w ? workspaceName(w) : a.workspaceId}</a> · {ago(a.requestedAt)}
                  </span>
                </div>
                <ToolInput name={a.tool} input={a.input} />
                {(a.reason || a.expiresAt) && (
                  <p class="muted small">
                    {a.reason ? `Why: ${a.reason}. ` : ''}
                    {a.expiresAt ? `Refused automatically at ${new Date(a.expiresAt).toLocaleTimeString()} unless you decide.` : ''}
                  </p>
                )}
                <ApprovalButtons id={a.approvalId} onDone={() => setState((s) => ({ approvals: s.approvals.filter((x) => x.approvalId !== a.approvalId) }))} />
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
