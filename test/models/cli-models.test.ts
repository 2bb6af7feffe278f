import { buildProgram } from '../../src/cli/main';

async function run(args: string[]): Promise<string> {
  let out = '';
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += chunk.toString();
    return true;
  });
  try {
    await buildProgram().parseAsync(['node', 'atflow', ...args]);
  } finally {
    spy.mockRestore();
  }
  return out;
}

describe('atflow models', () => {
  it('--json prints one {name, classes, parameters} per model and K', async () => {
    const rows = JSON.parse(await run(['models', '--json'])) as { name: string; classes: number; parameters: number }[];
    const get = (name: string, classes: number) => rows.find((r) => r.name === name && r.classes === classes);
    expect(rows).toHaveLength(14);
    expect(Object.keys(rows[0]).sort()).toEqual(['classes', 'name', 'parameters']);
    expect(get('resnet18', 10)?.parameters).toBe(11_173_962);
    expect(get('resnet18', 100)?.parameters).toBe(11_220_132);
    expect(get('wrn-34-10', 10)?.parameters).toBe(46_160_474);
    expect(get('wrn-28-10', 10)?.parameters).toBe(36_479_194);
    expect(get('vgg16', 10)?.parameters).toBe(14_728_266);
    expect(new Set(rows.map((r) => r.name))).toEqual(
      new Set(['mlp', 'cnn-small', 'resnet18', 'preact-resnet18', 'wrn-34-10', 'wrn-28-10', 'vgg16']),
    );
  });

  it('prints a table with input shapes', async () => {
    const text = await run(['models']);
    expect(text).toMatch(/wrn-34-10\s+10\s+46,160,474\s+32×32×3/);
    expect(text).toMatch(/cnn-small\s+10\s+225,034\s+28×28×1/);
  });
});
