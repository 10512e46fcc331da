"""Reading a step's programs: loop trip counts weight its collectives and its matmul FLOPs."""

from scaling.compile import hlo

# A loop that runs its body 6 times (bound from the condition, `i < 6`), the body one
# [8,16]·[16,32] dot and one all-gather; the entry one more dot and a reduce-scatter.
MODULE = """
HloModule step

%cond (p.0: (s32[], f32[8,32])) -> pred[] {
  %p.0 = (s32[], f32[8,32]) parameter(0)
  %i.0 = s32[] get-tuple-element(%p.0), index=0
  %bound = s32[] constant(6)
  ROOT %lt = pred[] compare(%i.0, %bound), direction=LT
}

%body (p.1: (s32[], f32[8,32])) -> (s32[], f32[8,32]) {
  %p.1 = (s32[], f32[8,32]) parameter(0)
  %a = f32[8,16]{1,0} constant({...})
  %w = f32[16,32]{1,0} constant({...})
  %dot.1 = f32[8,32]{1,0} dot(%a, %w), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  %ag = f32[32,32]{1,0} all-gather(%dot.1), dimensions={0}
  ROOT %t = (s32[], f32[8,32]) tuple(%i.0, %dot.1)
}

ENTRY %main (x: f32[8,16], y: f32[16,32]) -> f32[2,32] {
  %x = f32[8,16]{1,0} parameter(0)
  %y = f32[16,32]{1,0} parameter(1)
  %dot.0 = f32[8,32]{1,0} dot(%x, %y), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  %init = (s32[], f32[8,32]) tuple(%zero, %dot.0)
  %loop = (s32[], f32[8,32]) while(%init), condition=%cond, body=%body
  %rs-start = ((f32[8,32]), f32[2,32]) reduce-scatter-start(%dot.0), dimensions={0}
  ROOT %rs = f32[2,32]{1,0} reduce-scatter-done(%rs-start)
}
"""


def test_collectives_in_a_loop_body_count_once_per_trip():
  summary = hlo.summarize(MODULE)
  assert summary.loops == {6: 1}
  assert summary.trip_counts == {"induction_variable": 1}
  counts = {kind: (c["count"], c["bytes"]) for kind, c in summary.collectives.items()}
  assert counts["all-gather"] == (6, 6 * 32 * 32 * 4)
  assert counts["reduce-scatter"] == (1, 2 * 32 * 4)
  assert counts["all-reduce"] == (0, 0)


def test_matmuls_and_hbm_bytes_of_a_loop_body_count_once_per_trip():
  summary = hlo.summarize(MODULE)
  entry, body = 2 * 8 * 32 * 16, 2 * 8 * 32 * 16
  assert summary.matmul_flops == entry + 6 * body
  assert summary.matmul_flops_once == entry + body
  # The body's dot reads two constants it makes itself and writes [8,32]; its all-gather reads
  # that and writes [32,32]: what one trip moves, five more times than once; and the condition's
  # compare (two s32 in, a pred out) runs once per trip and once more to leave, six more times.
  one_trip = (8 * 32 * 4) + (8 * 32 * 4 + 32 * 32 * 4) + (8 * 16 * 4 + 16 * 32 * 4)
  assert summary.hbm_bytes - summary.hbm_bytes_once == 5 * one_trip + 6 * (4 + 4 + 1)


def test_a_recorded_trip_count_wins_over_the_condition():
  recorded = MODULE.replace("body=%body", 'body=%body, backend_config={"known_trip_count":{"n":"3"}}')
  summary = hlo.summarize(recorded)
  assert summary.loops == {3: 1} and summary.trip_counts == {"backend_config": 1}


# XLA's split-matmul loops: the counter starts at 1 (a trip peeled off before the loop), steps by 2,
# and the condition is a fusion holding the compare: (7 − 1) / 2 = 3 trips.
SPLIT = """
HloModule split

%fused_lt (param_0: s32[]) -> pred[] {
  %param_0 = s32[] parameter(0)
  %seven = s32[] constant(7)
  ROOT %lt = pred[] compare(%param_0, %seven), direction=LT
}

%cond (p.0: (s32[], f32[8,32])) -> pred[] {
  %p.0 = (s32[], f32[8,32]) parameter(0)
  %i.0 = s32[] get-tuple-element(%p.0), index=0
  ROOT %fusion.lt = pred[] fusion(%i.0), kind=kLoop, calls=%fused_lt
}

%body (p.1: (s32[], f32[8,32])) -> (s32[], f32[8,32]) {
  %p.1 = (s32[], f32[8,32]) parameter(0)
  %i.1 = s32[] get-tuple-element(%p.1), index=0
  %two = s32[] constant(2)
  %next = s32[] add(%i.1, %two)
  %x.1 = f32[8,32]{1,0} get-tuple-element(%p.1), index=1
  %ag-start = (f32[8,32], f32[32,32]) all-gather-start(%x.1), channel_id=7, replica_groups=[2,4]<=[8], dimensions={0}
  %ag-done = f32[32,32]{1,0} all-gather-done(%ag-start)
  ROOT %t = (s32[], f32[8,32]) tuple(%next, %x.1)
}

ENTRY %main (x: f32[8,32]) -> (s32[], f32[8,32]) {
  %x = f32[8,32]{1,0} parameter(0)
  %one = s32[] constant(1)
  %init = (s32[], f32[8,32]) tuple(%one, %x)
  ROOT %loop = (s32[], f32[8,32]) while(%init), condition=%cond, body=%body
}
"""


def test_split_loops_count_from_their_start_by_their_step_through_a_fused_condition():
  summary = hlo.summarize(SPLIT)
  assert summary.loops == {3: 1} and summary.trip_counts == {"induction_variable": 1}
  all_gather = summary.collectives["all-gather"]
  assert (all_gather["count"], all_gather["bytes"]) == (3, 3 * 32 * 32 * 4)
  assert summary.ops == [("all-gather", 3, 32 * 32 * 4, 8 * 32 * 4, "replica_groups=[2,4]<=[8]")]


# TPU's async collective fusions: the same all-gather (one channel id) in the start, a continuation
# and the done computation. One collective, not three.
ASYNC = """
HloModule async

%start (p.0: f32[8,32]) -> f32[32,32] {
  %p.0 = f32[8,32]{1,0} parameter(0)
  ROOT %ag.0 = f32[32,32]{1,0} all-gather(%p.0), channel_id=41, replica_groups=mesh['axis_0'=2,'axis_1'=4] {'axis_1'}, dimensions={0}
}

%continuation (p.1: f32[8,32]) -> f32[32,32] {
  %p.1 = f32[8,32]{1,0} parameter(0)
  ROOT %ag.1 = f32[32,32]{1,0} all-gather(%p.1), channel_id=41, replica_groups=mesh['axis_0'=2,'axis_1'=4] {'axis_1'}, dimensions={0}
}

%done (p.2: f32[8,32]) -> f32[32,32] {
  %p.2 = f32[8,32]{1,0} parameter(0)
  ROOT %ag.2 = f32[32,32]{1,0} all-gather(%p.2), channel_id=41, replica_groups=mesh['axis_0'=2,'axis_1'=4] {'axis_1'}, dimensions={0}
}

ENTRY %main (x: f32[8,32]) -> f32[32,32] {
  %x = f32[8,32]{1,0} parameter(0)
  %f.0 = f32[32,32]{1,0} fusion(%x), kind=kCustom, calls=%start
  %f.1 = f32[32,32]{1,0} fusion(%x), kind=kCustom, calls=%continuation
  ROOT %f.2 = f32[32,32]{1,0} fusion(%x), kind=kCustom, calls=%done
}
"""


def test_an_async_collective_fusion_counts_its_collective_once():
  summary = hlo.summarize(ASYNC)
  all_gather = summary.collectives["all-gather"]
  assert (all_gather["count"], all_gather["bytes"]) == (1, 32 * 32 * 4)
  assert all_gather["groups"] == {"4": {"count": 1, "bytes": 32 * 32 * 4, "operand_bytes": 8 * 32 * 4}}


def test_replica_groups_in_each_spelling():
  assert hlo.replica_groups("replica_groups=mesh['axis_0'=2,'axis_1'=4] {'axis_1'}", 8) == [
      [0, 1, 2, 3], [4, 5, 6, 7]]
  assert hlo.replica_groups("replica_groups=mesh['axis_0'=2,'axis_1'=4] {'axis_0'}", 8) == [
      [0, 4], [1, 5], [2, 6], [3, 7]]
  assert hlo.replica_groups("replica_groups=[4,2]<=[2,4]T(1,0)", 8) == [[0, 4], [1, 5], [2, 6], [3, 7]]
  assert hlo.replica_groups("replica_groups={{0,2},{1,3}}", 4) == [[0, 2], [1, 3]]
  assert hlo.replica_group_size("replica_groups=[2,4]<=[8]") == 4


def test_a_padded_convolution_counts_only_the_taps_that_read_input():
  # [B=4, F=128] · [128, 3×128] as TPU writes it: a size-3 window padded by 2 over a size-1 input;
  # 2 × 4 × 384 × 128 FLOPs, not three times that.
  rest = ("%lhs, %rhs), window={size=1x3 pad=0_0x2_2 rhs_reversal=0x1}, "
          "dim_labels=0bf1_1oi0->0b1f")
  assert hlo._convolution_flops(rest, (1, 4, 128, 1), (1, 4, 3, 128)) == 2 * 4 * 3 * 128 * 128


PALLAS = """
HloModule kernel

ENTRY %main (x: f32[8,128]) -> f32[8,128] {
  %x = f32[8,128]{1,0} parameter(0)
  %k.0 = f32[8,128]{1,0} custom-call(%x), custom_call_target="tpu_custom_call", backend_config={"flag_configs":[],"custom_call_config":{"body":"abc","cost_estimate":{"flops":"5000","transcendentals":"0","bytes_accessed":"8192","remote_bytes_transferred":"0"}}}
  ROOT %k.1 = f32[8,128]{1,0} custom-call(%k.0), custom_call_target="tpu_custom_call", backend_config={"custom_call_config": {"body": "abc"}}
}
"""


def test_pallas_kernels_count_the_flops_their_cost_estimate_declares():
  """As libtpu prints a `pl.pallas_call(..., cost_estimate=...)`; in a loop, once per trip."""
  summary = hlo.summarize(PALLAS)
  assert summary.kernel_flops == summary.kernel_flops_once == 5000
  assert summary.kernels_without_estimate == 1
  looped = MODULE.replace('%ag = f32[32,32]{1,0} all-gather(%dot.1), dimensions={0}',
                          PALLAS.split("\n")[5].replace("%k.0 = f32[8,128]", "%ag = f32[8,128]")
                          .replace("(%x)", "(%dot.1)"))
  summary = hlo.summarize(looped)
  assert (summary.kernel_flops, summary.kernel_flops_once) == (6 * 5000, 5000)


# The same shape of program as lowered StableHLO: one [8,16]·[16,32] matmul before a 6-trip loop
# whose body calls a function holding another, batched over 4.
LOWERED = """
module @jit_train {
  func.func public @main(%arg0: tensor<8x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"fsdp"}, {}]>}, %arg1: tensor<16x32xf32>) -> (tensor<8x32xf32>) {
    %0 = stablehlo.dot_general %arg0, %arg1, contracting_dims = [1] x [0] : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
    %c = stablehlo.constant dense<0> : tensor<i32>
    %1:2 = stablehlo.while(%iterArg = %c, %iterArg_1 = %0) : tensor<i32>, tensor<8x32xf32>
    cond {
      %c_2 = stablehlo.constant dense<6> : tensor<i32>
      %2 = stablehlo.compare LT, %iterArg, %c_2, SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1>
      stablehlo.return %2 : tensor<i1>
    } do {
      %3 = func.call @block(%iterArg_1) : (tensor<8x32xf32>) -> tensor<8x32xf32>
      stablehlo.return %iterArg, %3 : tensor<i32>, tensor<8x32xf32>
    }
    return %1#1 : tensor<8x32xf32>
  }
  func.func private @block(%arg0: tensor<8x32xf32>) -> tensor<8x32xf32> {
    %w = stablehlo.constant dense<1.0> : tensor<4x32x32xf32>
    %0 = stablehlo.broadcast_in_dim %arg0, dims = [1, 2] : (tensor<8x32xf32>) -> tensor<4x8x32xf32>
    %1 = stablehlo.dot_general %0, %w, batching_dims = [0] x [0], contracting_dims = [2] x [1] : (tensor<4x8x32xf32>, tensor<4x32x32xf32>) -> tensor<4x8x32xf32>
    %2 = stablehlo.slice %1 [0:1, 0:8, 0:32] : (tensor<4x8x32xf32>) -> tensor<1x8x32xf32>
    %3 = stablehlo.reshape %2 : (tensor<1x8x32xf32>) -> tensor<8x32xf32>
    return %3 : tensor<8x32xf32>
  }
}
"""


def test_matmul_flops_count_every_trip_through_calls():
  entry, block = 2 * 8 * 32 * 16, 2 * 4 * 8 * 32 * 32
  assert hlo.matmul_flops(LOWERED) == (entry + 6 * block, entry + block)
