PRAGMA application_id = 1179928369;
PRAGMA user_version = 1;
BEGIN TRANSACTION;
CREATE TABLE attempts (
            job_id TEXT NOT NULL,
            task TEXT NOT NULL,
            number INTEGER NOT NULL,
            started_at REAL NOT NULL,
            ended_at REAL,
            exit_code INTEGER,
            outcome TEXT,
            message TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (job_id, task, number),
            FOREIGN KEY (job_id, task) REFERENCES task_instances (job_id, name)
        ) WITHOUT ROWID;
INSERT INTO "attempts" VALUES('20261202-180539-5e2c3a','fit',1,1.79623473998932218554e+09,1.79623474000819349284e+09,1,'failed','');
INSERT INTO "attempts" VALUES('20261202-180539-5e2c3a','fit',2,1.79623474001083779328e+09,1.79623474003932595251e+09,0,'succeeded','');
INSERT INTO "attempts" VALUES('20261202-180539-5e2c3a','prepare',1,1.79623473992769336696e+09,1.7962347399881436825e+09,0,'succeeded','');
INSERT INTO "attempts" VALUES('20261202-180539-5e2c3a','report',1,1.79623474004016900058e+09,1.79623474005409431461e+09,0,'succeeded','');
INSERT INTO "attempts" VALUES('20261202-180540-5a57fc','check',1,1.79623474031895446773e+09,1.7962347403453660012e+09,3,'failed','');
INSERT INTO "attempts" VALUES('20261202-180540-7e4f16','check',1,1.79623474075453186038e+09,1.79623474077338051791e+09,3,'failed','');
INSERT INTO "attempts" VALUES('20261202-180541-594b39','wait',1,1.79623474104028749468e+09,1.7962347443052055836e+09,-15,'cancelled','cancelled');
CREATE TABLE cancel_requests (
            job_id TEXT PRIMARY KEY REFERENCES jobs (id),
            at REAL NOT NULL
        ) WITHOUT ROWID;
INSERT INTO "cancel_requests" VALUES('20261202-180541-594b39',1.79623474418150043483e+09);
CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id TEXT NOT NULL REFERENCES jobs (id),
            at REAL NOT NULL,
            kind TEXT NOT NULL,
            task TEXT,
            data_json TEXT NOT NULL DEFAULT '{}'
        );
INSERT INTO "events" VALUES(1,'20261202-180539-5e2c3a',1.79623473990860652929e+09,'job.created',NULL,'{"pipeline":"train","commit":"caa2004943cebc0108833ed84cccc7d981ce6e91","ref":"refs/heads/main","trigger":{"event":"cli"}}');
INSERT INTO "events" VALUES(2,'20261202-180539-5e2c3a',1.79623473992723393447e+09,'task.submitted','prepare','{"reason":""}');
INSERT INTO "events" VALUES(3,'20261202-180539-5e2c3a',1.79623473992769336696e+09,'attempt.started','prepare','{"number":1}');
INSERT INTO "events" VALUES(4,'20261202-180539-5e2c3a',1.79623473995897579196e+09,'task.running','prepare','{"reason":""}');
INSERT INTO "events" VALUES(5,'20261202-180539-5e2c3a',1.7962347399881436825e+09,'attempt.ended','prepare','{"number":1,"exit_code":0,"outcome":"succeeded","message":""}');
INSERT INTO "events" VALUES(6,'20261202-180539-5e2c3a',1.79623473998880910876e+09,'task.succeeded','prepare','{"reason":""}');
INSERT INTO "events" VALUES(7,'20261202-180539-5e2c3a',1.79623473998905825617e+09,'task.submitted','fit','{"reason":""}');
INSERT INTO "events" VALUES(8,'20261202-180539-5e2c3a',1.79623473998932218554e+09,'attempt.started','fit','{"number":1}');
INSERT INTO "events" VALUES(9,'20261202-180539-5e2c3a',1.79623473999566173552e+09,'task.running','fit','{"reason":""}');
INSERT INTO "events" VALUES(10,'20261202-180539-5e2c3a',1.79623474000819349284e+09,'attempt.ended','fit','{"number":1,"exit_code":1,"outcome":"failed","message":""}');
INSERT INTO "events" VALUES(11,'20261202-180539-5e2c3a',1.79623474000851178163e+09,'task.waiting','fit','{"reason":"attempt 1 failed: exit code 1; retrying","next_attempt_at":1796234740.0084639}');
INSERT INTO "events" VALUES(12,'20261202-180539-5e2c3a',1.7962347400088295936e+09,'task.submitted','fit','{"reason":""}');
INSERT INTO "events" VALUES(13,'20261202-180539-5e2c3a',1.79623474001083779328e+09,'attempt.started','fit','{"number":2}');
INSERT INTO "events" VALUES(14,'20261202-180539-5e2c3a',1.7962347400151324272e+09,'task.running','fit','{"reason":""}');
INSERT INTO "events" VALUES(15,'20261202-180539-5e2c3a',1.79623474003932595251e+09,'attempt.ended','fit','{"number":2,"exit_code":0,"outcome":"succeeded","message":""}');
INSERT INTO "events" VALUES(16,'20261202-180539-5e2c3a',1.79623474003960561747e+09,'task.succeeded','fit','{"reason":""}');
INSERT INTO "events" VALUES(17,'20261202-180539-5e2c3a',1.79623474003981661796e+09,'task.submitted','report','{"reason":""}');
INSERT INTO "events" VALUES(18,'20261202-180539-5e2c3a',1.79623474004016900058e+09,'attempt.started','report','{"number":1}');
INSERT INTO "events" VALUES(19,'20261202-180539-5e2c3a',1.79623474004285788542e+09,'task.running','report','{"reason":""}');
INSERT INTO "events" VALUES(20,'20261202-180539-5e2c3a',1.79623474005409431461e+09,'attempt.ended','report','{"number":1,"exit_code":0,"outcome":"succeeded","message":""}');
INSERT INTO "events" VALUES(21,'20261202-180539-5e2c3a',1.79623474005441117291e+09,'task.succeeded','report','{"reason":""}');
INSERT INTO "events" VALUES(22,'20261202-180540-5a57fc',1.79623474029745221138e+09,'job.created',NULL,'{"pipeline":"broken","commit":"caa2004943cebc0108833ed84cccc7d981ce6e91","ref":"refs/heads/main","trigger":{"event":"cli"}}');
INSERT INTO "events" VALUES(23,'20261202-180540-5a57fc',1.79623474031839013096e+09,'task.skipped','docs','{"reason":"skip: true"}');
INSERT INTO "events" VALUES(24,'20261202-180540-5a57fc',1.79623474031853246684e+09,'task.submitted','check','{"reason":""}');
INSERT INTO "events" VALUES(25,'20261202-180540-5a57fc',1.79623474031895446773e+09,'attempt.started','check','{"number":1}');
INSERT INTO "events" VALUES(26,'20261202-180540-5a57fc',1.79623474032943320271e+09,'task.running','check','{"reason":""}');
INSERT INTO "events" VALUES(27,'20261202-180540-5a57fc',1.7962347403453660012e+09,'attempt.ended','check','{"number":1,"exit_code":3,"outcome":"failed","message":""}');
INSERT INTO "events" VALUES(28,'20261202-180540-5a57fc',1.79623474034574532511e+09,'task.failed','check','{"reason":"exit code 3"}');
INSERT INTO "events" VALUES(29,'20261202-180540-5a57fc',1.79623474034599423408e+09,'task.skipped','publish','{"reason":"dependency ''check'' failed"}');
INSERT INTO "events" VALUES(30,'20261202-180540-7e4f16',1.79623474071309757226e+09,'job.created',NULL,'{"pipeline":"broken","commit":"caa2004943cebc0108833ed84cccc7d981ce6e91","ref":"refs/heads/main","trigger":{"event":"rerun","of":"20261202-180540-5a57fc"}}');
INSERT INTO "events" VALUES(31,'20261202-180540-7e4f16',1.79623474075391626357e+09,'task.skipped','docs','{"reason":"skip: true"}');
INSERT INTO "events" VALUES(32,'20261202-180540-7e4f16',1.79623474075408554075e+09,'task.submitted','check','{"reason":""}');
INSERT INTO "events" VALUES(33,'20261202-180540-7e4f16',1.79623474075453186038e+09,'attempt.started','check','{"number":1}');
INSERT INTO "events" VALUES(34,'20261202-180540-7e4f16',1.79623474076788234706e+09,'task.running','check','{"reason":""}');
INSERT INTO "events" VALUES(35,'20261202-180540-7e4f16',1.79623474077338051791e+09,'attempt.ended','check','{"number":1,"exit_code":3,"outcome":"failed","message":""}');
INSERT INTO "events" VALUES(36,'20261202-180540-7e4f16',1.79623474077369022373e+09,'task.failed','check','{"reason":"exit code 3"}');
INSERT INTO "events" VALUES(37,'20261202-180540-7e4f16',1.79623474077393412585e+09,'task.skipped','publish','{"reason":"dependency ''check'' failed"}');
INSERT INTO "events" VALUES(38,'20261202-180541-594b39',1.7962347410224168301e+09,'job.created',NULL,'{"pipeline":"slow","commit":"49e2fc08ea97d0aee8e61105e6164475e51efa3e","ref":"refs/heads/main","trigger":{"event":"cli"}}');
INSERT INTO "events" VALUES(39,'20261202-180541-594b39',1.79623474103989911078e+09,'task.submitted','wait','{"reason":""}');
INSERT INTO "events" VALUES(40,'20261202-180541-594b39',1.79623474104028749468e+09,'attempt.started','wait','{"number":1}');
INSERT INTO "events" VALUES(41,'20261202-180541-594b39',1.79623474105228900904e+09,'task.running','wait','{"reason":""}');
INSERT INTO "events" VALUES(42,'20261202-180541-594b39',1.79623474418153333668e+09,'job.cancel_requested',NULL,'{"pid":20756}');
INSERT INTO "events" VALUES(43,'20261202-180541-594b39',1.7962347443052055836e+09,'attempt.ended','wait','{"number":1,"exit_code":-15,"outcome":"cancelled","message":"cancelled"}');
INSERT INTO "events" VALUES(44,'20261202-180541-594b39',1.79623474430566573145e+09,'task.cancelled','wait','{"reason":"the job was cancelled"}');
INSERT INTO "events" VALUES(45,'20261202-180541-594b39',1.79623474430589270597e+09,'task.cancelled','after','{"reason":"the job was cancelled"}');
CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            pipeline TEXT NOT NULL,
            pipeline_path TEXT NOT NULL,
            repository TEXT NOT NULL,
            source TEXT NOT NULL,
            commit_id TEXT,
            ref TEXT,
            tree TEXT NOT NULL,
            code_trees_json TEXT NOT NULL,
            spec_json TEXT NOT NULL,
            spec_id TEXT NOT NULL,
            trigger_json TEXT NOT NULL,
            created_at REAL NOT NULL,
            rerun_of TEXT,
            dirty INTEGER NOT NULL
        );
INSERT INTO "jobs" VALUES('20261202-180539-5e2c3a','train','pipelines/train.yaml','/tmp/ftg-v1/mnist-pipelines','commit','caa2004943cebc0108833ed84cccc7d981ce6e91','refs/heads/main','88c5a4e2617961af120722cbcf48385fe36f225e','{"prepare":"88c5a4e2617961af120722cbcf48385fe36f225e","fit":"7f88dbaedb53e85bf4ad8a187954d22488bf5f83","report":"88c5a4e2617961af120722cbcf48385fe36f225e"}','{"version":"26.4.4","name":"train","description":"","environment":{"envs":{"STAGE":"v1"}},"params":[],"tasks":[{"name":"prepare","description":"","type":"custom","dependencies":[],"skip":false,"continue_on_failure":false,"cluster_mode":"single-node","cluster_size":1,"module_uri":"","environment":{"envs":{}},"resources":{"cpu":1,"mem":"1g"},"command":"echo prepared > \"$PIPELINE_OUTPUT_ROOT/data.txt\"; echo prepared the data"},{"name":"fit","description":"","type":"custom","dependencies":["prepare"],"skip":false,"continue_on_failure":false,"cluster_mode":"single-node","cluster_size":1,"module_uri":"","environment":{"envs":{}},"resources":{"cpu":1,"mem":"1g"},"command":"if [ ! -e \"$PIPELINE_VFROOT/fit.tried\" ]; then touch \"$PIPELINE_VFROOT/fit.tried\"; echo out of memory; exit 1; fi; cat msg.txt","retry":{"max_attempts":2,"delay":0.0},"code":"tasks/fit"},{"name":"report","description":"","type":"custom","dependencies":["fit"],"skip":false,"continue_on_failure":false,"cluster_mode":"single-node","cluster_size":1,"module_uri":"","environment":{"envs":{}},"resources":{"cpu":1,"mem":"1g"},"command":"echo reported"}]}','bfabea8a0f9ba347','{"event":"cli"}',1.79623473990860652929e+09,NULL,0);
INSERT INTO "jobs" VALUES('20261202-180540-5a57fc','broken','pipelines/broken.yaml','/tmp/ftg-v1/mnist-pipelines','commit','caa2004943cebc0108833ed84cccc7d981ce6e91','refs/heads/main','88c5a4e2617961af120722cbcf48385fe36f225e','{"check":"88c5a4e2617961af120722cbcf48385fe36f225e","publish":"88c5a4e2617961af120722cbcf48385fe36f225e","docs":"88c5a4e2617961af120722cbcf48385fe36f225e"}','{"version":"26.4.4","name":"broken","description":"","environment":{"envs":{}},"params":[],"tasks":[{"name":"check","description":"","type":"custom","dependencies":[],"skip":false,"continue_on_failure":false,"cluster_mode":"single-node","cluster_size":1,"module_uri":"","environment":{"envs":{}},"resources":{"cpu":1,"mem":"1g"},"command":"echo bad data; exit 3"},{"name":"publish","description":"","type":"custom","dependencies":["check"],"skip":false,"continue_on_failure":false,"cluster_mode":"single-node","cluster_size":1,"module_uri":"","environment":{"envs":{}},"resources":{"cpu":1,"mem":"1g"},"command":"echo published"},{"name":"docs","description":"","type":"custom","dependencies":[],"skip":true,"continue_on_failure":false,"cluster_mode":"single-node","cluster_size":1,"module_uri":"","environment":{"envs":{}},"resources":{"cpu":1,"mem":"1g"},"command":"echo docs"}]}','a03bc09ecf21aef6','{"event":"cli"}',1.79623474029745221138e+09,NULL,0);
INSERT INTO "jobs" VALUES('20261202-180540-7e4f16','broken','pipelines/broken.yaml','/tmp/ftg-v1/mnist-pipelines','commit','caa2004943cebc0108833ed84cccc7d981ce6e91','refs/heads/main','88c5a4e2617961af120722cbcf48385fe36f225e','{"check":"88c5a4e2617961af120722cbcf48385fe36f225e","publish":"88c5a4e2617961af120722cbcf48385fe36f225e","docs":"88c5a4e2617961af120722cbcf48385fe36f225e"}','{"version":"26.4.4","name":"broken","description":"","environment":{"envs":{}},"params":[],"tasks":[{"name":"check","description":"","type":"custom","dependencies":[],"skip":false,"continue_on_failure":false,"cluster_mode":"single-node","cluster_size":1,"module_uri":"","environment":{"envs":{}},"resources":{"cpu":1,"mem":"1g"},"command":"echo bad data; exit 3"},{"name":"publish","description":"","type":"custom","dependencies":["check"],"skip":false,"continue_on_failure":false,"cluster_mode":"single-node","cluster_size":1,"module_uri":"","environment":{"envs":{}},"resources":{"cpu":1,"mem":"1g"},"command":"echo published"},{"name":"docs","description":"","type":"custom","dependencies":[],"skip":true,"continue_on_failure":false,"cluster_mode":"single-node","cluster_size":1,"module_uri":"","environment":{"envs":{}},"resources":{"cpu":1,"mem":"1g"},"command":"echo docs"}]}','a03bc09ecf21aef6','{"event":"rerun","of":"20261202-180540-5a57fc"}',1.79623474071309757226e+09,'20261202-180540-5a57fc',0);
INSERT INTO "jobs" VALUES('20261202-180541-594b39','slow','pipelines/slow.yaml','/tmp/ftg-v1/mnist-pipelines','commit','49e2fc08ea97d0aee8e61105e6164475e51efa3e','refs/heads/main','7620520bd0c1dfcde4a08f8ce9e88f893347fbae','{"wait":"7620520bd0c1dfcde4a08f8ce9e88f893347fbae","after":"7620520bd0c1dfcde4a08f8ce9e88f893347fbae"}','{"version":"26.4.4","name":"slow","description":"","environment":{"envs":{}},"params":[],"tasks":[{"name":"wait","description":"","type":"custom","dependencies":[],"skip":false,"continue_on_failure":false,"cluster_mode":"single-node","cluster_size":1,"module_uri":"","environment":{"envs":{}},"resources":{"cpu":1,"mem":"1g"},"command":"echo waiting; sleep 60"},{"name":"after","description":"","type":"custom","dependencies":["wait"],"skip":false,"continue_on_failure":false,"cluster_mode":"single-node","cluster_size":1,"module_uri":"","environment":{"envs":{}},"resources":{"cpu":1,"mem":"1g"},"command":"echo after"}]}','9bd6bdac15c23dfc','{"event":"cli"}',1.7962347410224168301e+09,NULL,0);
CREATE TABLE task_instances (
            job_id TEXT NOT NULL REFERENCES jobs (id),
            name TEXT NOT NULL,
            position INTEGER NOT NULL,
            state TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            next_attempt_at REAL,
            PRIMARY KEY (job_id, name)
        ) WITHOUT ROWID;
INSERT INTO "task_instances" VALUES('20261202-180539-5e2c3a','fit',1,'succeeded','',NULL);
INSERT INTO "task_instances" VALUES('20261202-180539-5e2c3a','prepare',0,'succeeded','',NULL);
INSERT INTO "task_instances" VALUES('20261202-180539-5e2c3a','report',2,'succeeded','',NULL);
INSERT INTO "task_instances" VALUES('20261202-180540-5a57fc','check',0,'failed','exit code 3',NULL);
INSERT INTO "task_instances" VALUES('20261202-180540-5a57fc','docs',2,'skipped','skip: true',NULL);
INSERT INTO "task_instances" VALUES('20261202-180540-5a57fc','publish',1,'skipped','dependency ''check'' failed',NULL);
INSERT INTO "task_instances" VALUES('20261202-180540-7e4f16','check',0,'failed','exit code 3',NULL);
INSERT INTO "task_instances" VALUES('20261202-180540-7e4f16','docs',2,'skipped','skip: true',NULL);
INSERT INTO "task_instances" VALUES('20261202-180540-7e4f16','publish',1,'skipped','dependency ''check'' failed',NULL);
INSERT INTO "task_instances" VALUES('20261202-180541-594b39','after',1,'cancelled','the job was cancelled',NULL);
INSERT INTO "task_instances" VALUES('20261202-180541-594b39','wait',0,'cancelled','the job was cancelled',NULL);
CREATE INDEX jobs_by_created ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_by_pipeline ON jobs (pipeline, created_at DESC, id DESC);
CREATE TRIGGER jobs_are_immutable BEFORE UPDATE ON jobs
           BEGIN SELECT RAISE(ABORT, 'pipeline jobs are immutable: a re-run is a new job'); END;
CREATE INDEX events_by_job ON events (job_id, seq);
CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
           BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
           BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('events',45);
COMMIT;
