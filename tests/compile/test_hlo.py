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
  assert summary.collectives["all-gather"] == {"count": 6, "bytes": 6 * 32 * 32 * 4}
  assert summary.collectives["reduce-scatter"] == {"count": 1, "bytes": 2 * 32 * 4}
  assert summary.collectives["all-reduce"] == {"count": 0, "bytes": 0}


def test_a_recorded_trip_count_wins_over_the_condition():
  recorded = MODULE.replace("body=%body", 'body=%body, backend_config={"known_trip_count":{"n":"3"}}')
  assert hlo.summarize(recorded).loops == {3: 1}


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
