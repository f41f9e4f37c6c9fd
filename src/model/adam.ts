/**
 * Adam over a named parameter set, with its whole state (step, moments) readable and restorable by
 * name, so a checkpoint resumes exactly. Defaults are the paper's (docs/method.md §recipe): lr 2e-4, beta1 0.5.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface AdamState {
  step: number;
  lr: number;
  m: Map<string, tf.Tensor>;
  v: Map<string, tf.Tensor>;
}

export class Adam {
  step = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(
    private readonly params: Map<string, tf.Variable>,
    public lr = 2e-4,
    private readonly beta1 = 0.5,
    private readonly beta2 = 0.999,
    private readonly epsilon = 1e-8,
  ) {
    for (const [name, p] of params) {
      this.m.set(name, tf.variable(tf.zerosLike(p), false));
      this.v.set(name, tf.variable(tf.zerosLike(p), false));
    }
  }

  /** Gradients of `loss` for every parameter, by name; `loss` runs once. Returns its value. */
  minimize(loss: () => tf.Scalar): number {
    const names = [...this.params.keys()];
    const byVarName = new Map(names.map((n) => [this.params.get(n)!.name, n]));
    return tf.tidy(() => {
      const { value, grads } = tf.variableGrads(loss, [...this.params.values()]);
      const named = new Map<string, tf.Tensor>();
      for (const [varName, g] of Object.entries(grads)) named.set(byVarName.get(varName)!, g);
      this.apply(named);
      return value.dataSync()[0];
    });
  }

  apply(grads: Map<string, tf.Tensor>): void {
    this.step += 1;
    const c1 = 1 - this.beta1 ** this.step;
    const c2 = 1 - this.beta2 ** this.step;
    tf.tidy(() => {
      for (const [name, g] of grads) {
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        const p = this.params.get(name)!;
        m.assign(tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1)));
        v.assign(tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2)));
        const update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), this.epsilon));
        p.assign(tf.sub(p, tf.mul(update, this.lr)));
      }
    });
  }

  state(): AdamState {
    return { step: this.step, lr: this.lr, m: new Map(this.m), v: new Map(this.v) };
  }

  load(state: { step: number; lr: number; m: Map<string, Float32Array>; v: Map<string, Float32Array> }): void {
    this.step = state.step;
    this.lr = state.lr;
    for (const [kind, vars] of [
      ['m', this.m],
      ['v', this.v],
    ] as const) {
      for (const [name, variable] of vars) {
        const values = state[kind].get(name);
        if (!values) throw new Error(`optimizer state has no ${kind} for ${name}`);
        tf.tidy(() => variable.assign(tf.tensor(values, variable.shape)));
      }
    }
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
  }
}
