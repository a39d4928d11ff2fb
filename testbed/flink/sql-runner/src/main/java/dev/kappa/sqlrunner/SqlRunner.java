package dev.kappa.sqlrunner;

import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.ResultKind;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.TableResult;

/**
 * Runs SQL statements, one per program argument, in order, in a streaming TableEnvironment.
 *
 * <p>Each statement goes to {@code executeSql}. A statement that starts a job ({@code INSERT INTO ...} or {@code
 * EXECUTE STATEMENT SET BEGIN ... END}) is submitted and not waited for, so {@code main} returns once the job is
 * submitted. A session cluster's {@code POST /jars/{id}/run} allows one job per run: put several INSERTs into one
 * statement set. {@code SET 'key' = 'value'} sets a table configuration option for the statements after it (for
 * example {@code 'pipeline.name'}). A trailing semicolon is ignored.
 */
public final class SqlRunner {
  private static final Pattern SET =
      Pattern.compile("SET\\s+'([^']+)'\\s*=\\s*'([^']*)'", Pattern.CASE_INSENSITIVE | Pattern.DOTALL);

  private SqlRunner() {}

  public static void main(String[] args) {
    if (args.length == 0) {
      throw new IllegalArgumentException("usage: SqlRunner <sql statement>...");
    }
    TableEnvironment tEnv = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
    int n = 0;
    for (String arg : args) {
      String sql = strip(arg);
      if (sql.isEmpty()) {
        continue;
      }
      n++;
      Matcher set = SET.matcher(sql);
      if (set.matches()) {
        tEnv.getConfig().set(set.group(1), set.group(2));
        System.out.printf("kappa-sql-runner: [%d] SET '%s'%n", n, set.group(1));
        continue;
      }
      System.out.printf("kappa-sql-runner: [%d] %s%n", n, sql);
      TableResult result = tEnv.executeSql(sql);
      if (result.getJobClient().isPresent()) {
        System.out.printf(
            "kappa-sql-runner: [%d] submitted job %s%n", n, result.getJobClient().get().getJobID());
      } else if (result.getResultKind() == ResultKind.SUCCESS_WITH_CONTENT) {
        result.print();
      }
    }
  }

  private static String strip(String sql) {
    String s = sql.strip();
    while (s.endsWith(";")) {
      s = s.substring(0, s.length() - 1).strip();
    }
    return s;
  }
}
