# claude-vm: SSH logins (config-ssh sends CLAUDE_VM_PROJECT_DIR) start in the workspace's project directory.
if [ -n "${CLAUDE_VM_PROJECT_DIR:-}" ] && [ -d "$CLAUDE_VM_PROJECT_DIR" ] && [ "$PWD" = "$HOME" ]; then
    cd "$CLAUDE_VM_PROJECT_DIR" || true
fi
