// The conversation with `sudo -S` when the operator gave a become password
// (-K), as Ansible holds it: sudo writes our random prompt to stderr, we answer
// with the password line; the become shell then prints a random success line on
// stdout, which we strip, and only then does the command's own stdin flow (an
// upload streams the snapshot through it: not one byte may reach sudo as a
// password). A second prompt means the password was refused: stdin is closed so
// sudo gives up instead of waiting. The password is never echoed or kept in output.

export interface BecomeHandlers {
  sendPassword: () => void
  giveUp: () => void
  /** sudo let us in: the command runs now. */
  ready: () => void
  stdout: (d: Buffer) => void
  stderr: (d: Buffer) => void
}

export class BecomeWatcher {
  private prompts = 0
  private isReady = false
  private out = Buffer.alloc(0)
  private err = ''

  constructor(
    private readonly promptMarker: string,
    private readonly successMarker: string,
    private readonly on: BecomeHandlers,
  ) {}

  get accepted(): boolean {
    return this.isReady
  }

  /** How many times sudo asked. */
  get promptCount(): number {
    return this.prompts
  }

  stderr(d: Buffer): void {
    if (this.isReady) return this.on.stderr(d)
    this.err += d.toString('latin1')
    // Answer each complete prompt; keep what sudo said around it (e.g. "Sorry, try again.").
    let i: number
    while ((i = this.err.indexOf(this.promptMarker)) >= 0) {
      const before = this.err.slice(0, i)
      this.err = this.err.slice(i + this.promptMarker.length)
      if (before) this.on.stderr(Buffer.from(before, 'latin1'))
      this.prompts++
      if (this.prompts === 1) this.on.sendPassword()
      else this.on.giveUp()
    }
    // A partial marker may still be arriving; pass on what cannot be one.
    const keep = this.partialSuffix(this.err, this.promptMarker)
    const pass = this.err.slice(0, this.err.length - keep)
    this.err = this.err.slice(this.err.length - keep)
    if (pass) this.on.stderr(Buffer.from(pass, 'latin1'))
  }

  stdout(d: Buffer): void {
    if (this.isReady) return this.on.stdout(d)
    this.out = Buffer.concat([this.out, d])
    const line = Buffer.from(`${this.successMarker}\n`)
    const i = this.out.indexOf(line)
    if (i < 0) return
    const rest = this.out.subarray(i + line.length)
    this.out = Buffer.alloc(0)
    this.isReady = true
    this.on.ready()
    if (rest.length) this.on.stdout(rest)
  }

  /** The channel closed: hand on whatever was held back. */
  flush(): void {
    if (this.out.length) this.on.stdout(this.out)
    if (this.err) this.on.stderr(Buffer.from(this.err, 'latin1'))
    this.out = Buffer.alloc(0)
    this.err = ''
  }

  private partialSuffix(text: string, marker: string): number {
    for (let n = Math.min(marker.length - 1, text.length); n > 0; n--) if (marker.startsWith(text.slice(-n))) return n
    return 0
  }
}
